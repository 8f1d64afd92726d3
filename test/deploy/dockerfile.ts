/**
 * The subset of Dockerfile syntax the project's Dockerfile uses, parsed offline for the deploy
 * tests: instructions (with continued lines and comments), global ARGs before the first FROM
 * (substituted into FROM), and stages with their bodies.
 */

export interface Instruction {
  op: string;
  args: string;
  line: number;
}
export interface Stage {
  name: string | undefined;
  from: string;
  body: Instruction[];
}

export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines = text.split('\n');
  const instrs: Instruction[] = [];
  let buf = '';
  let start = 0;
  lines.forEach((raw, i) => {
    const l = raw.trim();
    if (buf === '' && (l === '' || l.startsWith('#'))) return;
    if (buf !== '' && l.startsWith('#')) return;
    if (buf === '') start = i + 1;
    buf += (buf === '' ? '' : ' ') + l.replace(/\\$/, '').trim();
    if (!l.endsWith('\\')) {
      const m = /^([A-Za-z]+)\s+(.*)$/.exec(buf);
      if (m === null) throw new Error(`Dockerfile line ${start}: cannot parse ${buf}`);
      instrs.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
      buf = '';
    }
  });
  if (buf !== '') throw new Error('Dockerfile ends inside a continued line');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instrs) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args.get(a ?? b) ?? '');
      stages.push({ name: m[2], from, body: [] });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`Dockerfile line ${ins.line}: ${ins.op} before FROM`);
      const [k, v] = ins.args.split('=');
      args.set(k!, v ?? '');
    } else stages[stages.length - 1]!.body.push(ins);
  }
  return { args, stages };
}

/** The runtime (last) stage's ENTRYPOINT in exec form, as argv. */
export function runtimeEntrypoint(text: string): string[] {
  const { stages } = parseDockerfile(text);
  const entry = stages[stages.length - 1]?.body.filter((i) => i.op === 'ENTRYPOINT').pop();
  if (entry === undefined) throw new Error('the runtime stage has no ENTRYPOINT');
  return JSON.parse(entry.args) as string[];
}
