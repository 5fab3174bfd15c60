// The Vercel AI SDK (`ai` + `@ai-sdk/openai`) against a real trioproxy: `node vercel_ai.mjs <case>`.
// `openai(model)` is the SDK's default and calls the Responses API (POST /responses);
// `openai.chat(model)` calls chat completions; `openai.embedding(model)` calls /embeddings.
import { createOpenAI } from "@ai-sdk/openai";
import { APICallError, embed, embedMany, generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import {
  apiKey, baseURL, BROKEN_STREAM, CHAT, describeError, EMBED, main, OVERLOADED, QUESTION, RELAY_NATIVE,
} from "./common.mjs";

const openai = createOpenAI({ baseURL, apiKey });
const weather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string(), days: z.number().int().min(1).max(7) }),
  execute: async ({ city, days }) => ({ city, days, forecast: "sunny" }),
});

async function caught(promise) {
  try {
    await promise;
    return { error: null };
  } catch (error) {
    return { error: describeError(error), isAPICallError: APICallError.isInstance(error) };
  }
}

async function streamed(model) {
  const result = streamText({ model, prompt: QUESTION });
  let text = "";
  for await (const delta of result.textStream) text += delta;
  return { text, finishReason: await result.finishReason, usage: await result.usage };
}

await main({
  chat: async () => {
    const result = await generateText({ model: openai.chat(CHAT), prompt: QUESTION, maxRetries: 0 });
    return { text: result.text, finishReason: result.finishReason, usage: result.usage };
  },
  chat_stream: async () => streamed(openai.chat(CHAT)),
  embeddings: async () => {
    const one = await embed({ model: openai.embedding(EMBED), value: "first text", maxRetries: 0 });
    const many = await embedMany({ model: openai.embedding(EMBED), values: ["first text", "second text"], maxRetries: 0 });
    return { one: one.embedding, many: many.embeddings, usage: many.usage };
  },
  // a tool call, the SDK runs the tool, the model answers from its result (two steps)
  tools: async () => {
    const result = await generateText({
      model: openai.chat(CHAT), prompt: QUESTION, tools: { weather }, stopWhen: stepCountIs(3), maxRetries: 0,
    });
    return {
      text: result.text,
      steps: result.steps.map((step) => ({
        finishReason: step.finishReason,
        toolCalls: step.toolCalls.map((c) => ({ toolName: c.toolName, input: c.input })),
        toolResults: step.toolResults.map((r) => r.output),
      })),
    };
  },
  tools_stream: async () => {
    const result = streamText({ model: openai.chat(CHAT), prompt: QUESTION, tools: { weather }, stopWhen: stepCountIs(3) });
    let text = "";
    for await (const delta of result.textStream) text += delta;
    const steps = await result.steps;
    return { text, toolCalls: steps.flatMap((s) => s.toolCalls.map((c) => ({ toolName: c.toolName, input: c.input }))) };
  },
  object: async () => {
    const result = await generateObject({
      model: openai.chat(CHAT), prompt: QUESTION, maxRetries: 0,
      schema: z.object({ name: z.string(), population: z.number().int(), landmarks: z.array(z.string()) }),
    });
    return { object: result.object };
  },
  unauthorized: async () => caught(generateText({ model: createOpenAI({ baseURL, apiKey: "sk-wrong-key" }).chat(CHAT), prompt: QUESTION, maxRetries: 0 })),
  unknown_model: async () => caught(generateText({ model: openai.chat("no-such-model"), prompt: QUESTION, maxRetries: 0 })),
  rate_limited: async () => caught(generateText({ model: openai.chat(OVERLOADED), prompt: QUESTION, maxRetries: 0 })),
  // an interrupted stream: the proxy's error event reaches streamText as an error part
  broken_stream: async () => {
    const errors = [];
    let text = "";
    const result = streamText({ model: openai.chat(BROKEN_STREAM), prompt: QUESTION, onError: ({ error }) => errors.push(error) });
    for await (const part of result.fullStream) {
      if (part.type === "text-delta") text += part.text;
      if (part.type === "error") errors.push(part.error);
    }
    return { text, errors: errors.map((e) => (e instanceof Error ? describeError(e) : e)) };
  },
  // the SDK's default model factory: the Responses API (issue #15 item 9)
  responses: async () => {
    const result = await generateText({ model: openai(CHAT), prompt: QUESTION, maxRetries: 0 });
    return { text: result.text, finishReason: result.finishReason };
  },
  responses_stream: async () => streamed(openai(CHAT)),
  // forwarded natively to an upstream that serves /v1/responses
  responses_native: async () => {
    const result = await generateText({ model: openai(RELAY_NATIVE), prompt: QUESTION, maxRetries: 0 });
    return { text: result.text, finishReason: result.finishReason, usage: result.usage };
  },
  responses_native_stream: async () => streamed(openai(RELAY_NATIVE)),
});
