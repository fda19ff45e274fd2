"""A provider that answers from the record: the model's recorded final answer (or nothing,
for rows without one) and its recorded token counts, so cost is exactly prompt_tokens x
input price + output_tokens x output price per call. Plugs into the gateway in place of the
HTTP executor; nothing else about the request flow changes."""

from __future__ import annotations

from collections.abc import Mapping

from thrifty.core.request import ChatRequest
from thrifty.core.response import Completion
from thrifty.core.usage import Usage
from thrifty.engine.execute import Executor, OpenStream
from thrifty.errors import UpstreamBadResponse
from thrifty.providers.base import Target
from thrifty.providers.transport import Deadlines, Transport
from thrifty.replay.dataset import Row


class ReplayExecutor(Executor):
    def __init__(self, rows: Mapping[str, Row]) -> None:
        super().__init__(Transport())
        self._rows = rows

    async def complete(self, req: ChatRequest, target: Target, deadlines: Deadlines) -> Completion:
        row = self._rows.get(req.request_id)
        rec = row.models.get(target.upstream_model) if row is not None else None
        if row is None or rec is None:
            raise UpstreamBadResponse(f"no recorded answer of {target.upstream_model} for "
                                      f"{req.request_id}", provider=target.provider)
        usage = Usage(input_tokens=row.prompt_tokens, output_tokens=rec.output_tokens)
        body = {
            "id": f"chatcmpl-replay-{row.id}",
            "object": "chat.completion",
            "created": 0,
            "model": target.upstream_model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": rec.answer or ""}}],
            "usage": usage.to_openai(),
        }
        return Completion(body, usage, "stop")

    async def open_stream(self, req: ChatRequest, target: Target,
                          deadlines: Deadlines) -> OpenStream:
        raise UpstreamBadResponse("replay serves non-streaming requests only",
                                  provider=target.provider)
