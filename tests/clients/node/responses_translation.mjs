// The OpenAI Node SDK and the Vercel AI SDK against trioproxy's Responses API translation
// (tests/responses_api/translating_server.py: to_chat_request → a scripted chat model → the
// translated answer or event stream). `node responses_translation.mjs <case>…`; RESPONSES_URL is the
// server's OpenAI base URL (…/v1). Prints one JSON document on stdout, {case: result}; a case that
// threw gives {thrown: "<stack>"}. One Node process runs every case: starting Node and importing the
// AI SDK is most of a case's time.
import { createOpenAI } from "@ai-sdk/openai";
import { APICallError, generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import { z } from "zod";

const baseURL = process.env.RESPONSES_URL;
const apiKey = "sk-test";
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const provider = createOpenAI({ baseURL, apiKey });
const QUESTION = "What is the capital of France?";
const WEATHER = {
  type: "function",
  name: "weather",
  description: "The weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, days: { type: "integer", minimum: 1 } },
    required: ["city", "days"],
    additionalProperties: false,
  },
  strict: true,
};
const weather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string(), days: z.number().int().min(1) }),
  execute: async ({ city, days }) => ({ city, days, forecast: "sunny" }),
});

function describeError(error) {
  return { name: error?.name ?? null, message: String(error?.message ?? error), statusCode: error?.statusCode ?? null };
}

// every event of a raw stream: its type and sequence number, the text of the deltas, the last response
async function collect(stream) {
  const types = [];
  const sequence = [];
  let text = "";
  let arguments_ = "";
  let final = null;
  let error = null;
  const itemIds = new Set();
  for await (const event of stream) {
    types.push(event.type);
    sequence.push(event.sequence_number);
    if (event.item_id) itemIds.add(event.item_id);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.function_call_arguments.delta") arguments_ += event.delta;
    if (event.type === "error") error = { code: event.code, message: event.message };
    if (event.response && ["response.completed", "response.incomplete", "response.failed"].includes(event.type)) {
      final = event.response;
    }
  }
  return { types, sequence, text, arguments: arguments_, final, error, itemIds: [...itemIds] };
}

async function multiTurn(providerOptions) {
  const first = await generateText({ model: provider("m"), prompt: QUESTION, maxRetries: 0, providerOptions });
  const messages = [{ role: "user", content: QUESTION }, ...first.response.messages,
                    { role: "user", content: "And of Germany?" }];
  try {
    const second = await generateText({ model: provider("m"), messages, maxRetries: 0, providerOptions });
    return { text: second.text, error: null };
  } catch (error) {
    return { text: null, error: { statusCode: error.statusCode ?? null, message: String(error.message) } };
  }
}

const cases = {
  node_create: async () => {
    const response = await client.responses.create({ model: "m", input: QUESTION, instructions: "Be brief." });
    return { id: response.id, object: response.object, status: response.status, outputText: response.output_text,
             usage: response.usage, model: response.model, instructions: response.instructions };
  },
  node_stream: async () => collect(await client.responses.create({ model: "m", input: QUESTION, stream: true })),
  // the SDK's own accumulator (ResponseStream) over the SSE stream: finalResponse() and delta snapshots
  node_stream_helper: async () => {
    const stream = client.responses.stream({ model: "m", input: QUESTION });
    const snapshots = [];
    stream.on("response.output_text.delta", (event) => snapshots.push(event.snapshot));
    const final = await stream.finalResponse();
    return { outputText: final.output_text, status: final.status, usage: final.usage, snapshots };
  },
  node_tool_round_trip: async () => {
    const first = await client.responses.create({ model: "m", input: QUESTION, tools: [WEATHER] });
    const call = first.output.find((item) => item.type === "function_call");
    const second = await client.responses.create({
      model: "m",
      tools: [WEATHER],
      input: [
        { role: "user", content: QUESTION },
        call,
        { type: "function_call_output", call_id: call.call_id, output: JSON.stringify({ forecast: "sunny" }) },
      ],
    });
    return { call: { type: call.type, name: call.name, arguments: call.arguments, callId: call.call_id, id: call.id },
             outputText: second.output_text };
  },
  node_tool_stream: async () => {
    const stream = client.responses.stream({ model: "m", input: QUESTION, tools: [WEATHER] });
    const final = await stream.finalResponse();
    const call = final.output.find((item) => item.type === "function_call");
    return { name: call.name, arguments: call.arguments, parsedArguments: call.parsed_arguments ?? null, status: call.status };
  },
  node_stream_error: async () => collect(await client.responses.create({ model: "broken", input: QUESTION, stream: true })),
  node_refused_field: async () => {
    try {
      await client.responses.create({ model: "m", input: QUESTION, previous_response_id: "resp_123" });
      return { error: null };
    } catch (error) {
      return { error: { status: error.status, param: error.param, code: error.code, message: error.message } };
    }
  },
  ai_generate: async () => {
    const result = await generateText({ model: provider("m"), prompt: QUESTION, maxRetries: 0 });
    return { text: result.text, finishReason: result.finishReason, usage: result.usage,
             responseId: result.response.id, modelId: result.response.modelId };
  },
  ai_stream: async () => {
    const result = streamText({ model: provider("m"), prompt: QUESTION });
    let text = "";
    for await (const delta of result.textStream) text += delta;
    return { text, finishReason: await result.finishReason, usage: await result.usage };
  },
  ai_tools: async () => {
    const result = await generateText({ model: provider("m"), prompt: QUESTION, tools: { weather },
                                        stopWhen: stepCountIs(3), maxRetries: 0 });
    return { text: result.text, steps: result.steps.map((step) => ({
      finishReason: step.finishReason,
      toolCalls: step.toolCalls.map((c) => ({ toolName: c.toolName, input: c.input })),
      toolResults: step.toolResults.map((r) => r.output),
    })) };
  },
  ai_tools_stream: async () => {
    const result = streamText({ model: provider("m"), prompt: QUESTION, tools: { weather }, stopWhen: stepCountIs(3) });
    let text = "";
    for await (const delta of result.textStream) text += delta;
    const steps = await result.steps;
    return { text, finishReasons: steps.map((s) => s.finishReason),
             toolCalls: steps.flatMap((s) => s.toolCalls.map((c) => ({ toolName: c.toolName, input: c.input }))) };
  },
  ai_object: async () => {
    const result = await generateObject({
      model: provider("m"), prompt: QUESTION, maxRetries: 0,
      schema: z.object({ name: z.string(), population: z.number().int(), landmarks: z.array(z.string()) }),
    });
    return { object: result.object, finishReason: result.finishReason };
  },
  ai_reasoning: async () => {
    const result = streamText({ model: provider("thinker"), prompt: QUESTION });
    const parts = [];
    let reasoning = "";
    let text = "";
    for await (const part of result.fullStream) {
      parts.push(part.type);
      if (part.type === "reasoning-delta") reasoning += part.text;
      if (part.type === "text-delta") text += part.text;
    }
    return { reasoning, text, parts: [...new Set(parts)] };
  },
  ai_incomplete: async () => {
    const result = await generateText({ model: provider("length"), prompt: QUESTION, maxRetries: 0 });
    return { text: result.text, finishReason: result.finishReason, raw: result.rawFinishReason ?? null };
  },
  ai_refusal: async () => {
    const result = await generateText({ model: provider("refuser"), prompt: QUESTION, maxRetries: 0 });
    return { text: result.text, finishReason: result.finishReason };
  },
  // a second turn built from the first one's messages: with the SDK's default (store: true) the
  // assistant's earlier text travels as an item_reference to an item nobody stored
  ai_multi_turn: async () => multiTurn(undefined),
  ai_multi_turn_no_store: async () => multiTurn({ openai: { store: false } }),
  ai_stream_error: async () => {
    const errors = [];
    let text = "";
    const result = streamText({ model: provider("broken"), prompt: QUESTION, onError: ({ error }) => errors.push(error) });
    for await (const part of result.fullStream) {
      if (part.type === "text-delta") text += part.text;
    }
    return { text, finishReason: await result.finishReason, errors: errors.map(describeError) };
  },
  // a stream that fails before any output: the SDK turns the error event into an APICallError
  ai_stream_error_early: async () => {
    const errors = [];
    const result = streamText({ model: provider("broken-early"), prompt: QUESTION, maxRetries: 0,
                                onError: ({ error }) => errors.push(error) });
    for await (const part of result.fullStream) void part;
    return { errors: errors.map((e) => ({ ...describeError(e), isAPICallError: APICallError.isInstance(e) })) };
  },
};

const results = {};
for (const name of process.argv.slice(2)) {
  if (!cases[name]) {
    console.error(`unknown case ${name}; known: ${Object.keys(cases).join(", ")}`);
    process.exit(2);
  }
  try {
    results[name] = await cases[name]();
  } catch (error) {
    results[name] = { thrown: String(error?.stack ?? error) };
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
