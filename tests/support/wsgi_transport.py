"""A requests transport adapter that answers from a WSGI app in-process (the simulator), so code that uses
requests runs unchanged in tests without sockets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from werkzeug.test import Client


class WSGIAdapter(BaseAdapter):
    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = Client(app)
        self.calls: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        assert kwargs.get("timeout") is not None, "every outbound call must have a timeout"
        parts = urlsplit(request.url or "")
        self.calls.append((request.method or "GET", parts.path))
        body = request.body.encode() if isinstance(request.body, str) else request.body
        resp = self.client.open(
            parts.path,
            method=request.method,
            query_string=parts.query,
            headers=dict(request.headers),
            data=body,
            base_url=f"{parts.scheme}://{parts.netloc}",
        )
        out = requests.Response()
        out.status_code = resp.status_code
        out.headers = requests.structures.CaseInsensitiveDict(resp.headers)
        out._content = resp.get_data()
        out.url = request.url or ""
        out.request = request
        return out

    def close(self) -> None:
        pass
