"""OpenAI-compatible APIs (vLLM, llama.cpp, LM Studio, ...): chat completions and completions.

* ``openai`` ``chat`` → ``POST /v1/chat/completions``: ``messages``; streamed as SSE
  ``data: {"choices":[{"delta":{"content":...}}]}`` events ending with ``data: [DONE]``;
  ``stream_options.include_usage`` asks for a last event with ``usage`` and ``"choices": []``.
* ``openai`` ``completions`` → ``POST /v1/completions``: the history rendered as one ``prompt``;
  events carry ``choices[0].text``.

A choice's ``finish_reason`` says the model finished (a stream without one was cut short); an
event with an ``error`` object (vLLM and llama.cpp's server send one inside a 200 stream) is the
server's failure, raised as :class:`~llmsoak.locust.results.ServerError` with its message.
"""

from __future__ import annotations

from llmsoak.locust.apis.base import Flavour, render_prompt, server_error


def openai_usage(obj: dict, result) -> None:
    """Copy ``usage.completion_tokens`` / ``usage.prompt_tokens`` of ``obj`` into ``result``."""
    usage = obj.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            result.output_tokens = usage["completion_tokens"]
        if isinstance(usage.get("prompt_tokens"), int):
            result.input_tokens = usage["prompt_tokens"]


class OpenAIChat(Flavour):
    name = "openai-chat"
    path = "/v1/chat/completions"
    stream_format = "sse"

    def prompt_fields(self, messages) -> dict:
        """The request's prompt part: chat sends the messages (completions overrides)."""
        return {"messages": messages}

    def choice_text(self, choice: dict, streamed: bool):
        """The text of one ``choices[i]`` entry (a stream delta, or the whole message)."""
        if streamed:
            delta = choice.get("delta") or {}
            return delta.get("content") or delta.get("reasoning_content")
        return (choice.get("message") or {}).get("content")

    def body(self, messages, session_id):
        body = {"model": self.model, **self.prompt_fields(messages), "stream": self.stream}
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        body.update(self.options)
        return body

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("event is not a JSON object")
        choices = obj.get("choices")
        if choices:
            choice = choices[0]
            if choice.get("finish_reason"):
                result.finish_reason = choice["finish_reason"]
            return self.choice_text(choice, True)
        if "usage" in obj:
            openai_usage(obj, result)
        if "error" in obj:
            raise server_error(obj["error"])
        return None

    def decode_body(self, obj, result):
        if obj.__class__ is dict and "error" in obj and "choices" not in obj:
            raise server_error(obj["error"])
        openai_usage(obj, result)
        result.finished = True
        choices = obj.get("choices") or [{}]
        result.finish_reason = choices[0].get("finish_reason") or "stop"
        return self.choice_text(choices[0], False)


class OpenAICompletions(OpenAIChat):
    name = "openai-completions"
    path = "/v1/completions"

    def prompt_fields(self, messages) -> dict:
        return {"prompt": render_prompt(messages)}

    def choice_text(self, choice: dict, streamed: bool):
        return choice.get("text")
