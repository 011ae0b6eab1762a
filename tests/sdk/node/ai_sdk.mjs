// The Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`'s chat model) against Maestro's
// /v1/chat/completions, driven by tests/sdk/test_vercel_ai_sdk.py: one case per run, whose
// result is printed as one JSON line with the bodies the SDK posted to Maestro (`sent`).
//
//   MAESTRO_URL=http://127.0.0.1:PORT MAESTRO_TOKEN=… node ai_sdk.mjs <case> <provider/model>
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Output, generateObject, generateText, streamObject, streamText, tool } from 'ai';
import { z } from 'zod';

const [name, modelId] = process.argv.slice(2);
const sent = [];
const maestro = createOpenAICompatible({
  name: 'maestro',
  baseURL: `${process.env.MAESTRO_URL}/v1`,
  apiKey: process.env.MAESTRO_TOKEN,
  includeUsage: true,
  supportsStructuredOutputs: true,
  fetch: async (url, init) => {
    if (typeof init?.body === 'string') sent.push(JSON.parse(init.body));
    return fetch(url, init);
  },
});
const model = maestro.chatModel(modelId);

const HELLO = 'Hello!';
const WEATHER = "What's the weather?";
const EXTRACT = 'Extract the person: Ada Lovelace, who died at 36.';

const person = z.object({ name: z.string(), age: z.number().int() }).describe('A person named in the text.');
// Every tool the recorded answers call (see tests/sdk/shapes.py), without `execute`: the calls
// come back to the caller.
const tools = {
  get_current_weather: tool({
    description: 'Current weather in a city',
    inputSchema: z.object({ location: z.string() }),
  }),
  get_weather: tool({
    description: 'Current weather in a city, in the given units',
    inputSchema: z.object({ location: z.string(), units: z.enum(['c', 'f']) }),
  }),
  get_capital: tool({ description: 'The capital of a country', inputSchema: z.object({ country: z.string() }) }),
  load_capability: tool({ description: 'Load a deferred capability by id', inputSchema: z.object({ id: z.string() }) }),
};

// Stream errors are reported, not thrown: keep them so the test sees them.
const errors = [];
const common = { model, maxRetries: 0, onError: ({ error }) => errors.push(String(error?.message ?? error)) };
const usage = (u) => ({ inputTokens: u?.inputTokens ?? null, outputTokens: u?.outputTokens ?? null });
const calls = (list) => list.map((c) => ({ id: c.toolCallId, name: c.toolName, args: c.input }));

async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const cases = {
  async text() {
    const r = await generateText({ model, maxRetries: 0, prompt: HELLO });
    return { text: r.text, reasoning: r.reasoningText ?? null, finishReason: r.finishReason, usage: usage(r.usage) };
  },
  async stream() {
    const r = streamText({ ...common, prompt: HELLO });
    const deltas = await collect(r.textStream);
    return {
      deltas,
      text: await r.text,
      reasoning: (await r.reasoningText) ?? null,
      finishReason: await r.finishReason,
      usage: usage(await r.usage),
    };
  },
  async tools() {
    const r = await generateText({ model, maxRetries: 0, tools, prompt: WEATHER });
    return { text: r.text, finishReason: r.finishReason, toolCalls: calls(r.toolCalls) };
  },
  async 'stream-tools'() {
    const r = streamText({ ...common, tools, prompt: WEATHER });
    await r.consumeStream();
    return { text: await r.text, finishReason: await r.finishReason, toolCalls: calls(await r.toolCalls) };
  },
  // Structured output: generateText / streamText with Output.object, and the older
  // generateObject / streamObject.
  async output() {
    const r = await generateText({ model, maxRetries: 0, output: Output.object({ schema: person }), prompt: EXTRACT });
    return { object: r.output, finishReason: r.finishReason, usage: usage(r.usage) };
  },
  async 'stream-output'() {
    const r = streamText({ ...common, output: Output.object({ schema: person }), prompt: EXTRACT });
    const partials = await collect(r.partialOutputStream);
    return { partials, object: await r.output, finishReason: await r.finishReason, usage: usage(await r.usage) };
  },
  async 'generate-object'() {
    const r = await generateObject({ model, maxRetries: 0, schema: person, prompt: EXTRACT });
    return { object: r.object, finishReason: r.finishReason, usage: usage(r.usage) };
  },
  async 'stream-object'() {
    const r = streamObject({ ...common, schema: person, prompt: EXTRACT });
    const partials = await collect(r.partialObjectStream);
    return { partials, object: await r.object, finishReason: await r.finishReason, usage: usage(await r.usage) };
  },
};

if (!(name in cases)) {
  console.error(`usage: node ai_sdk.mjs <${Object.keys(cases).join('|')}> <provider/model>`);
  process.exit(2);
}
const result = await cases[name]();
console.log(JSON.stringify({ ...result, errors, sent }));
