"""JSON log lines carry what an operator reads, and nothing meant for a colour terminal."""

import io
import json
import logging

from shared.logs import JsonLines


def test_uvicorns_coloured_copy_of_the_message_stays_out_of_the_json_line() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines(service="api"))
    logger = logging.getLogger("uvicorn.error.test")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning(
        "Started server process [%d]", 7, extra={"color_message": "Started \x1b[36m%d\x1b[0m"}
    )
    record = json.loads(out.getvalue())
    assert record["message"] == "Started server process [7]"
    assert record["service"] == "api"
    assert "color_message" not in record
    assert "\x1b" not in out.getvalue()
