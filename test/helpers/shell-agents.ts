import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, type Part } from '@google/genai';
import OpenAI from 'openai';

/**
 * A coding agent's turn through the proxy with the official SDKs: the user's text goes out with the agent's
 * shell tool offered, and what comes back is read as the agent reads it (the SDK's assembled message, for a
 * stream its final one). The dangerous-command guard's tests ask through these.
 */
export type AgentSide = 'openai' | 'anthropic' | 'gemini';

/** The shell tool each client's agent offers (Codex-like, Claude Code, Gemini CLI). */
export const SHELL_TOOL: Record<AgentSide, string> = {
  openai: 'shell',
  anthropic: 'Bash',
  gemini: 'run_shell_command',
};
const SCHEMA = { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] };

export interface AgentAsk {
  url: string;
  key: string;
  model: string;
  command: string;
  stream: boolean;
  /** The agent's system prompt (where agents state their working directory), when it matters. */
  system?: string;
}

export interface AgentAnswer {
  text: string;
  calls: Array<{ name: string; command: string }>;
  finish: string;
}

function openaiAnswer(res: OpenAI.ChatCompletion): AgentAnswer {
  const m = res.choices[0]!.message;
  return {
    text: m.content ?? '',
    calls: (m.tool_calls ?? []).map((t) => ({
      name: t.type === 'function' ? t.function.name : '',
      command: t.type === 'function' ? (JSON.parse(t.function.arguments) as { command: string }).command : '',
    })),
    finish: res.choices[0]!.finish_reason,
  };
}

export async function askAgent(client: AgentSide, ask: AgentAsk): Promise<AgentAnswer> {
  const { url, key, model, command, stream, system } = ask;
  if (client === 'openai') {
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
    const params = {
      model,
      messages: [
        ...(system === undefined ? [] : [{ role: 'system' as const, content: system }]),
        { role: 'user' as const, content: command },
      ],
      tools: [{ type: 'function' as const, function: { name: SHELL_TOOL.openai, parameters: SCHEMA } }],
    };
    return openaiAnswer(
      stream
        ? await c.chat.completions.stream({ ...params, stream: true }).finalChatCompletion()
        : await c.chat.completions.create(params),
    );
  }
  if (client === 'anthropic') {
    const c = new Anthropic({ baseURL: `${url}/anthropic`, apiKey: key, maxRetries: 0 });
    const params = {
      model,
      max_tokens: 1000,
      ...(system === undefined ? {} : { system }),
      messages: [{ role: 'user' as const, content: command }],
      tools: [{ name: SHELL_TOOL.anthropic, input_schema: SCHEMA as Anthropic.Tool.InputSchema }],
    };
    const m = stream ? await c.messages.stream(params).finalMessage() : await c.messages.create(params);
    return {
      text: m.content.map((b) => (b.type === 'text' ? b.text : '')).join(''),
      calls: m.content.flatMap((b) =>
        b.type === 'tool_use' ? [{ name: b.name, command: (b.input as { command: string }).command }] : [],
      ),
      finish: m.stop_reason ?? '',
    };
  }
  const g = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: url } });
  const request = {
    model,
    contents: command,
    config: {
      ...(system === undefined ? {} : { systemInstruction: system }),
      tools: [{ functionDeclarations: [{ name: SHELL_TOOL.gemini, parametersJsonSchema: SCHEMA }] }],
    },
  };
  const parts: Part[] = [];
  let finish = '';
  if (stream) {
    for await (const chunk of await g.models.generateContentStream(request)) {
      parts.push(...(chunk.candidates?.[0]?.content?.parts ?? []));
      finish = chunk.candidates?.[0]?.finishReason ?? finish;
    }
  } else {
    const res = await g.models.generateContent(request);
    parts.push(...(res.candidates?.[0]?.content?.parts ?? []));
    finish = res.candidates?.[0]?.finishReason ?? '';
  }
  return {
    text: parts.map((p) => p.text ?? '').join(''),
    calls: parts.flatMap((p) =>
      p.functionCall
        ? [{ name: p.functionCall.name ?? '', command: (p.functionCall.args as { command: string }).command }]
        : [],
    ),
    finish,
  };
}

/** Codex's tools as recorded (test/fixtures/clients/codex-0.171.0): `exec_command` and a freeform tool. */
export const CODEX_TOOLS = [
  {
    type: 'function' as const,
    name: 'exec_command',
    strict: false,
    parameters: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] },
  },
];

export interface ResponsesAnswer {
  text: string;
  calls: Array<{ name: string; command: string }>;
}

/** A Codex turn in the Responses API (`store: false`), read from the SDK's (final) Response. */
export async function askResponsesAgent(
  ask: Omit<AgentAsk, 'command'> & { input: string; tools: OpenAI.Responses.Tool[] },
): Promise<ResponsesAnswer> {
  const c = new OpenAI({ baseURL: `${ask.url}/v1`, apiKey: ask.key, maxRetries: 0 });
  const params = { model: ask.model, input: ask.input, tools: ask.tools, store: false };
  const res = ask.stream
    ? await c.responses.stream(params).finalResponse()
    : await c.responses.create(params);
  return {
    text: res.output_text,
    calls: res.output.flatMap((item) =>
      item.type === 'function_call'
        ? [{ name: item.name, command: (JSON.parse(item.arguments) as { command: string }).command }]
        : item.type === 'custom_tool_call'
          ? [{ name: item.name, command: item.input }]
          : [],
    ),
  };
}
