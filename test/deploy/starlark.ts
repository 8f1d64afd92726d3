/**
 * A parser for the Starlark subset the Tiltfile uses: top-level statements that are calls or
 * assignments, with literal arguments (strings, numbers, booleans, None, lists, tuples, dicts),
 * names, nested calls and keyword arguments. Anything else (def, if, for, load, operators) is a
 * syntax error, so the Tiltfile stays declarative and fully checkable.
 */

export type Value =
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'none' }
  | { t: 'name'; v: string }
  | { t: 'list'; items: Value[] }
  | { t: 'dict'; entries: [Value, Value][] }
  | Call;

export interface Call {
  t: 'call';
  fn: string;
  args: Value[];
  kwargs: Map<string, Value>;
  line: number;
}

export type Statement =
  { kind: 'call'; call: Call } | { kind: 'assign'; name: string; value: Value; line: number };

interface Token {
  k: 'str' | 'num' | 'name' | 'op' | 'nl' | 'eof';
  v: string;
  line: number;
}

export class StarlarkSyntaxError extends Error {}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let depth = 0;
  const err = (m: string): never => {
    throw new StarlarkSyntaxError(`line ${line}: ${m}`);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '\n') {
      if (depth === 0 && out.length > 0 && out[out.length - 1]!.k !== 'nl')
        out.push({ k: 'nl', v: '', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      if (depth === 0 && (out.length === 0 || out[out.length - 1]!.k === 'nl') && c !== '\r') {
        err('unexpected indentation (blocks are not part of the supported subset)');
      }
      i++;
    } else if (c === '\\' && src[i + 1] === '\n') {
      i += 2;
      line++;
    } else if (c === '"' || c === "'") {
      const triple = src.startsWith(c.repeat(3), i);
      const q = triple ? c.repeat(3) : c;
      const startLine = line;
      i += q.length;
      let s = '';
      for (;;) {
        if (i >= src.length) err(`unterminated string starting on line ${startLine}`);
        if (src.startsWith(q, i)) {
          i += q.length;
          break;
        }
        const ch = src[i]!;
        if (ch === '\n') {
          if (!triple) err('newline in string');
          line++;
        }
        if (ch === '\\') {
          const n = src[i + 1] ?? '';
          s +=
            ({ n: '\n', t: '\t', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[n] ?? `\\${n}`;
          i += 2;
          continue;
        }
        s += ch;
        i++;
      }
      out.push({ k: 'str', v: s, line: startLine });
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(src.slice(i))![0];
      out.push({ k: 'num', v: m, line });
      i += m.length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))![0];
      out.push({ k: 'name', v: m, line });
      i += m.length;
    } else if ('([{'.includes(c)) {
      depth++;
      out.push({ k: 'op', v: c, line });
      i++;
    } else if (')]}'.includes(c)) {
      depth--;
      if (depth < 0) err(`unbalanced ${c}`);
      out.push({ k: 'op', v: c, line });
      i++;
    } else if (',:='.includes(c)) {
      out.push({ k: 'op', v: c, line });
      i++;
    } else {
      err(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  if (depth !== 0) err('unbalanced brackets at end of file');
  out.push({ k: 'nl', v: '', line }, { k: 'eof', v: '', line });
  return out;
}

export function parseStarlark(src: string): Statement[] {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  const err = (m: string): never => {
    throw new StarlarkSyntaxError(`line ${peek().line}: ${m}`);
  };
  const expectOp = (v: string) => {
    const t = next();
    if (t.k !== 'op' || t.v !== v)
      throw new StarlarkSyntaxError(`line ${t.line}: expected ${v}, got ${t.v || t.k}`);
  };
  const isOp = (v: string) => peek().k === 'op' && peek().v === v;

  function seq(close: string, item: () => void): void {
    while (!isOp(close)) {
      item();
      if (isOp(',')) next();
      else if (!isOp(close)) err(`expected , or ${close}`);
    }
    next();
  }

  function value(): Value {
    const t = next();
    if (t.k === 'str') {
      let s = t.v;
      while (peek().k === 'str') s += next().v;
      return { t: 'str', v: s };
    }
    if (t.k === 'num') return { t: 'num', v: Number(t.v) };
    if (t.k === 'name') {
      if (t.v === 'True' || t.v === 'False') return { t: 'bool', v: t.v === 'True' };
      if (t.v === 'None') return { t: 'none' };
      if (isOp('(')) return call(t.v, t.line);
      return { t: 'name', v: t.v };
    }
    if (t.k === 'op' && (t.v === '[' || t.v === '(')) {
      const items: Value[] = [];
      seq(t.v === '[' ? ']' : ')', () => items.push(value()));
      return { t: 'list', items };
    }
    if (t.k === 'op' && t.v === '{') {
      const entries: [Value, Value][] = [];
      seq('}', () => {
        const k = value();
        expectOp(':');
        entries.push([k, value()]);
      });
      return { t: 'dict', entries };
    }
    throw new StarlarkSyntaxError(`line ${t.line}: unexpected ${t.v || t.k}`);
  }

  function call(fn: string, line: number): Call {
    expectOp('(');
    const c: Call = { t: 'call', fn, args: [], kwargs: new Map(), line };
    seq(')', () => {
      if (peek().k === 'name' && toks[p + 1]?.k === 'op' && toks[p + 1]?.v === '=') {
        const k = next().v;
        next();
        if (c.kwargs.has(k)) err(`keyword argument ${k} repeated`);
        c.kwargs.set(k, value());
      } else {
        if (c.kwargs.size > 0) err('positional argument after keyword argument');
        c.args.push(value());
      }
    });
    return c;
  }

  const out: Statement[] = [];
  while (peek().k !== 'eof') {
    if (peek().k === 'nl') {
      next();
      continue;
    }
    const t = next();
    if (t.k !== 'name') throw new StarlarkSyntaxError(`line ${t.line}: a statement must start with a name`);
    if (isOp('(')) out.push({ kind: 'call', call: call(t.v, t.line) });
    else if (isOp('=')) {
      next();
      out.push({ kind: 'assign', name: t.v, value: value(), line: t.line });
    } else err(`unsupported statement after ${t.v}`);
    if (peek().k !== 'nl') err('one statement per line');
  }
  return out;
}

/** Every call in the file, nested ones included, in source order. */
export function allCalls(stmts: Statement[]): Call[] {
  const out: Call[] = [];
  const visit = (v: Value): void => {
    if (v.t === 'call') {
      out.push(v);
      v.args.forEach(visit);
      v.kwargs.forEach(visit);
    } else if (v.t === 'list') v.items.forEach(visit);
    else if (v.t === 'dict') v.entries.forEach(([a, b]) => (visit(a), visit(b)));
  };
  for (const s of stmts) visit(s.kind === 'call' ? s.call : s.value);
  return out;
}

export function str(v: Value | undefined): string | undefined {
  return v?.t === 'str' ? v.v : undefined;
}
