"""A relay the project did not write: aiosmtpd serving STARTTLS on one
port and implicit TLS (RFC 8314) on another, with the certificate and key
given. Prints "ready" on stdout once both listeners accept connections,
then serves until stdin closes. It never delivers anything.

usage: relay.py ADDRESS STARTTLS_PORT IMPLICIT_TLS_PORT CERT KEY
"""

import ssl
import sys

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 accepted and dropped"


def context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    address, starttls_port, implicit_port, cert, key = sys.argv[1:6]
    ctx = context(cert, key)
    # No AUTH: the replayed relay does not take AUTH (README, probe).
    common = dict(auth_exclude_mechanism=["LOGIN", "PLAIN"], server_hostname="smtp.sendgrid.net")
    starttls = Controller(
        Sink(), hostname=address, port=int(starttls_port), tls_context=ctx, **common
    )
    implicit = Controller(
        Sink(), hostname=address, port=int(implicit_port), ssl_context=ctx, **common
    )
    # start() returns once the server answered its own test connection.
    starttls.start()
    implicit.start()
    print("ready", flush=True)
    sys.stdin.read()
    starttls.stop()
    implicit.stop()


if __name__ == "__main__":
    main()
