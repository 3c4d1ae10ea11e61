#!/usr/bin/env python3
"""A relay's path as the incident's firewall left it, on one loopback
address: port 587 answers EHLO without STARTTLS (stripped, AUTH still
listed), port 465 speaks TLS from the first byte with a clean relay
behind it. It takes no mail: MAIL, RCPT and DATA are refused.

usage: stripping_path.py ADDRESS CERT_PEM KEY_PEM
Prints "ready ADDRESS 587 465" on stdout once both ports listen.
"""

import asyncio
import ssl
import sys

NAME = "smtp.sendgrid.net"
EHLO_STRIPPED = [f"250-{NAME}", "250-8BITMIME", "250-AUTH PLAIN LOGIN", "250 SIZE 31457280"]
EHLO_TLS = [f"250-{NAME}", "250-8BITMIME", "250-AUTH PLAIN LOGIN", "250 SIZE 31457280"]


async def session(reader, writer, ehlo):
    def send(lines):
        writer.write("".join(line + "\r\n" for line in lines).encode())

    send([f"220 {NAME} ESMTP service ready"])
    try:
        while True:
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                break
            verb = line.decode(errors="replace").strip().split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                send(ehlo)
            elif verb == "QUIT":
                send(["221 2.0.0 bye"])
                await writer.drain()
                break
            elif verb == "STARTTLS":
                # The firewall turns the command into one the relay refuses.
                send(["502 5.5.1 command not recognized"])
            else:
                send(["554 5.7.1 this test relay takes no mail"])
    except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main(address, cert, key):
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    stripped = await asyncio.start_server(
        lambda r, w: session(r, w, EHLO_STRIPPED), address, 587
    )
    implicit = await asyncio.start_server(
        lambda r, w: session(r, w, EHLO_TLS), address, 465, ssl=tls
    )
    print(f"ready {address} 587 465", flush=True)
    async with stripped, implicit:
        await asyncio.gather(stripped.serve_forever(), implicit.serve_forever())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
