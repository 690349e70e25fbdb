"""A small OpenAI-compatible chat-completions server standing in for an LLM
provider (which these examples cannot reach): `POST /v1/chat/completions`
answers with usage figures that depend on what the prompt asks — a prompt
asking for detail gets long answers, slowly; one asking for brevity short
ones, quickly — so a prompt change shows in cost and latency as it would."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        system = " ".join(m["content"] for m in body["messages"] if m["role"] in ("system", "developer")).lower()
        question = body["messages"][-1]["content"]
        completion = 180 if "detail" in system else 30 if "brief" in system else 60
        time.sleep(completion * 0.0004)  # ~2.5k tokens/s
        words = ["Thanks", "for", "asking."] + ["Here", "is", "more", "detail."] * (completion // 4)
        answer = {
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(words[: max(3, completion // 2)])}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len((system + question).split()), "completion_tokens": completion, "total_tokens": len((system + question).split()) + completion},
        }
        self.reply(200, answer)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start():
    """Starts the upstream on a free port; returns (base URL, server)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd
