// Shared by the Node client scripts: the proxy's address comes from the environment (set by
// tests/clients/conftest.py run_node), the result is ONE JSON document on stdout.
export const baseURL = process.env.PROXY_URL;
export const apiKey = process.env.PROXY_KEY;
export const CHAT = "fake-chat";
export const EMBED = "text-embedding-3-small";
export const RELAY_CHAT = "relay-chat";
export const RELAY_EMBED = "relay-embed";
export const RELAY_NATIVE = "relay-native"; // its upstream serves /v1/responses: forwarded untranslated
export const OVERLOADED = "fake-overloaded"; // every request fails with a 429
export const BROKEN_STREAM = "relay-broken"; // the upstream closes the connection mid-stream
export const QUESTION = "What is the capital of France?";

export const WEATHER_PARAMETERS = {
  type: "object",
  properties: {
    city: { type: "string" },
    days: { type: "integer", minimum: 1, maximum: 7 },
    unit: { type: "string", enum: ["celsius", "fahrenheit"] },
  },
  required: ["city", "days", "unit"],
  additionalProperties: false,
};

// An error as plain data: its class chain (so the test can check the client's own types) and fields.
export function describeError(error) {
  const classes = [];
  for (let proto = Object.getPrototypeOf(error); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    classes.push(proto.constructor.name);
  }
  return {
    classes,
    name: error.name,
    message: String(error.message),
    status: error.status ?? error.statusCode ?? null,
    code: error.code ?? null,
    responseBody: error.responseBody ?? null,
  };
}

export async function main(cases) {
  const name = process.argv[2];
  const run = cases[name];
  if (!run) {
    console.error(`unknown case ${name}; known: ${Object.keys(cases).join(", ")}`);
    process.exit(2);
  }
  const result = await run();
  process.stdout.write(JSON.stringify(result) + "\n");
}
