"""Keeps every mail it is sent, in memory, and lists them as JSON."""

import json
from email import message_from_bytes
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

MAILS: list[dict[str, object]] = []


class Keep:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        mail = message_from_bytes(envelope.content)
        MAILS.append(
            {
                "ID": str(len(MAILS) + 1),
                "MessageID": mail.get("Message-ID", ""),
                "From": {"Address": envelope.mail_from},
                "To": [{"Address": address} for address in envelope.rcpt_tos],
                "Subject": mail.get("Subject", ""),
                "Snippet": "",
                "Headers": {"To": [a for _, a in getaddresses(mail.get_all("To", []))]},
            }
        )
        return "250 OK"


class Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/api/v1/messages":
            self.send_error(404)
            return
        body = json.dumps({"total": len(MAILS), "messages": list(reversed(MAILS))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    Controller(Keep(), hostname="0.0.0.0", port=1025).start()
    ThreadingHTTPServer(("0.0.0.0", 8025), Api).serve_forever()
