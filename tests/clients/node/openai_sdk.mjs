// The official OpenAI Node SDK against a real trioproxy: `node openai_sdk.mjs <case>`.
import OpenAI from "openai";
import {
  apiKey, baseURL, BROKEN_STREAM, CHAT, describeError, EMBED, main, OVERLOADED, QUESTION, RELAY_EMBED, WEATHER_PARAMETERS,
} from "./common.mjs";

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const messages = [{ role: "user", content: QUESTION }];
const tools = [{ type: "function", function: { name: "get_weather", parameters: WEATHER_PARAMETERS } }];

async function caught(promise) {
  try {
    await promise;
    return { error: null };
  } catch (error) {
    return {
      error: describeError(error),
      isAuthenticationError: error instanceof OpenAI.AuthenticationError,
      isNotFoundError: error instanceof OpenAI.NotFoundError,
      isRateLimitError: error instanceof OpenAI.RateLimitError,
      isAPIError: error instanceof OpenAI.APIError,
    };
  }
}

await main({
  chat: async () => {
    const completion = await client.chat.completions.create({ model: CHAT, messages });
    return { content: completion.choices[0].message.content, finish: completion.choices[0].finish_reason, usage: completion.usage };
  },
  stream: async () => {
    const stream = await client.chat.completions.create({ model: CHAT, messages, stream: true, stream_options: { include_usage: true } });
    let content = "";
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      if (chunk.choices.length) {
        content += chunk.choices[0].delta.content ?? "";
        finish = chunk.choices[0].finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    return { content, finish, usage };
  },
  // no encoding_format: the SDK asks for base64 and decodes the little-endian float32 bytes itself
  embeddings: async () => {
    const input = ["first text", "second text"];
    const byDefault = await client.embeddings.create({ model: EMBED, input });
    const asFloat = await client.embeddings.create({ model: EMBED, input, encoding_format: "float" });
    const relayed = await client.embeddings.create({ model: RELAY_EMBED, input: "first text" });
    return {
      byDefault: byDefault.data.map((d) => Array.from(d.embedding)),
      asFloat: asFloat.data.map((d) => d.embedding),
      relayed: Array.from(relayed.data[0].embedding),
      usage: byDefault.usage,
    };
  },
  tools: async () => {
    const completion = await client.chat.completions.create({ model: CHAT, messages, tools });
    const choice = completion.choices[0];
    return { finish: choice.finish_reason, content: choice.message.content, toolCalls: choice.message.tool_calls };
  },
  tools_stream: async () => {
    const runner = client.chat.completions.stream({ model: CHAT, messages, tools });
    const final = await runner.finalChatCompletion();
    const choice = final.choices[0];
    return { finish: choice.finish_reason, toolCalls: choice.message.tool_calls };
  },
  json_schema: async () => {
    const completion = await client.chat.completions.create({
      model: CHAT, messages,
      response_format: { type: "json_schema", json_schema: { name: "weather", strict: true, schema: WEATHER_PARAMETERS } },
    });
    return { content: completion.choices[0].message.content };
  },
  unauthorized: async () => caught(new OpenAI({ baseURL, apiKey: "sk-wrong-key", maxRetries: 0 }).chat.completions.create({ model: CHAT, messages })),
  unknown_model: async () => caught(client.chat.completions.create({ model: "no-such-model", messages })),
  rate_limited: async () => caught(client.chat.completions.create({ model: OVERLOADED, messages })),
  // the proxy ends an interrupted stream with an error event: the SDK throws while iterating
  broken_stream: async () => {
    let content = "";
    const outcome = await caught((async () => {
      const stream = await client.chat.completions.create({ model: BROKEN_STREAM, messages, stream: true });
      for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? "";
    })());
    return { ...outcome, content };
  },
  models: async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    return { models };
  },
  // GET /v1/models/{model} (trioproxy does not serve it yet: issue #15 item 8)
  model_retrieve: async () => {
    const model = await client.models.retrieve(CHAT);
    return { id: model.id, object: model.object };
  },
  // the Responses API: what new OpenAI examples use (translated to chat completions by the proxy)
  responses: async () => {
    const response = await client.responses.create({ model: CHAT, input: QUESTION });
    return { outputText: response.output_text, status: response.status };
  },
  responses_stream: async () => {
    const stream = await client.responses.create({ model: CHAT, input: QUESTION, stream: true });
    let text = "";
    const types = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
    }
    return { text, types };
  },
});
