"""A local SMTP server for measuring the sender: aiosmtpd on 127.0.0.1:PORT that accepts and counts
every message (nothing stored). Usage: python3 smtp_sink.py PORT"""
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


if __name__ == "__main__":
    sink = Sink()
    c = Controller(sink, hostname="127.0.0.1", port=int(sys.argv[1]))
    c.start()
    print("listening", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()
