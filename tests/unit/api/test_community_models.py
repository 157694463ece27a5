"""The community actions' bodies are strict: what the published schema refuses, they refuse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.routes.community import CommentIn, PenaltyIn, PostIn


@pytest.mark.parametrize("parent", [True, "5", 5.0])
def test_a_comment_id_is_a_json_integer(parent: object) -> None:
    with pytest.raises(ValidationError, match="parent_comment_id"):
        CommentIn.model_validate({"body": "x", "parent_comment_id": parent})
    assert CommentIn.model_validate({"body": "x", "parent_comment_id": 5}).parent_comment_id == 5


def test_texts_are_json_strings() -> None:
    with pytest.raises(ValidationError, match="title"):
        PostIn.model_validate({"title": 5})
    with pytest.raises(ValidationError, match="reason"):
        PenaltyIn.model_validate({"user_id": "ann", "reason": True})
