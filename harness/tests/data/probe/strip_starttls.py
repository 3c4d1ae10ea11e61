"""A middlebox the project did not write: forwards SMTP from LISTEN to
UPSTREAM and removes STARTTLS from the server's EHLO reply, as a
firewall's SMTP inspection does. Prints "ready" once it listens, then
serves until stdin closes.

usage: strip_starttls.py LISTEN_ADDRESS LISTEN_PORT UPSTREAM_ADDRESS UPSTREAM_PORT
"""

import asyncio
import sys


async def client_commands(reader, writer):
    """Client to server, as it comes."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def session(client_r, client_w, upstream):
    server_r, server_w = await asyncio.open_connection(*upstream)
    await asyncio.gather(
        client_commands(client_r, server_w),
        server_replies(server_r, client_w),
    )


async def server_replies(reader, writer):
    """Server to client, a reply at a time, STARTTLS left out."""
    try:
        while True:
            lines = []
            while True:
                line = await reader.readline()
                if not line:
                    break
                lines.append(line)
                if line[3:4] != b"-":
                    break
            if not lines:
                break
            # Removing a reply's last line would leave it open: the line
            # before it then ends the reply.
            kept = [l for l in lines if l[4:].strip().upper() != b"STARTTLS"]
            if kept and kept[-1][3:4] == b"-":
                kept[-1] = kept[-1][:3] + b" " + kept[-1][4:]
            writer.write(b"".join(kept))
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    address, port, up_address, up_port = sys.argv[1:5]
    upstream = (up_address, int(up_port))
    server = await asyncio.start_server(
        lambda r, w: session(r, w, upstream), address, int(port)
    )
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
