"""Faithful local fakes of native LLM APIs (Anthropic, Azure OpenAI, Bedrock, Gemini, Vertex AI,
Ollama, OpenAI-compatible presets), each a real HTTP/1.1 server on 127.0.0.1 (see ``server.py``)."""
