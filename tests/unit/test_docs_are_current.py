"""The topic documentation and the AsyncAPI document are generated from the code."""

from services.docs import DOCS, asyncapi_json, topics_markdown
from shared.contracts.topics import ALL_TOPICS


def test_committed_docs_match_the_code() -> None:
    assert (DOCS / "topics.md").read_text() == topics_markdown(), "run `backorder docs`"
    assert (DOCS / "asyncapi.json").read_text() == asyncapi_json(), "run `backorder docs`"


def test_asyncapi_documents_every_topic() -> None:
    document = asyncapi_json()
    for topic in ALL_TOPICS:
        assert f'"address": "{topic.name}"' in document, topic.name
