/**
 * Dockerfile, .dockerignore and Makefile: the build context holds what every COPY names, the build
 * stage gets every folder the TypeScript build compiles, the commands name npm scripts and files
 * that exist, and the runtime stage is a non-root image that starts the CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseDockerfile, runtimeEntrypoint, type Instruction, type Stage } from './dockerfile.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  scripts: Record<string, string>;
  bin: Record<string, string>;
};

/** COPY/ADD arguments without flags: sources and destination, and the --from stage if any. */
function copyArgs(ins: Instruction): { from?: string; sources: string[]; dest: string } {
  const parts = ins.args.startsWith('[') ? (JSON.parse(ins.args) as string[]) : ins.args.split(/\s+/);
  const flags = parts.filter((p) => p.startsWith('--'));
  const rest = parts.filter((p) => !p.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return {
    ...(from !== undefined ? { from } : {}),
    sources: rest.slice(0, -1),
    dest: rest[rest.length - 1]!,
  };
}

/** .dockerignore patterns as tests on a context-relative path (exact, folder prefix or glob). */
function dockerignore(): (path: string) => boolean {
  const pats = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const toRe = (p: string) =>
    new RegExp(
      '^' +
        p
          .replace(/[.+^$()|[\]{}]/g, '\\$&')
          .replace(/\*\*\//g, '(?:.*/)?')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]') +
        '(?:/.*)?$',
    );
  const res = pats.map((p) => ({ neg: p.startsWith('!'), re: toRe(p.replace(/^!/, '').replace(/^\//, '')) }));
  return (path) => res.reduce((ignored, r) => (r.re.test(path) ? !r.neg : ignored), false);
}

const { args: globalArgs, stages } = parseDockerfile(read('Dockerfile'));
const build = stages.find((s) => s.name === 'build')!;
const runtime = stages[stages.length - 1]!;
const runs = (s: Stage) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args);

describe('Dockerfile', () => {
  it('has a build stage and a runtime stage on node:20-bookworm-slim', () => {
    expect(globalArgs.get('NODE_IMAGE')).toBe('node:20-bookworm-slim');
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    for (const s of stages) expect(s.from).toBe('node:20-bookworm-slim');
  });

  it('builds with npm ci, npm run build, npm prune --omit=dev, in that order, naming scripts that exist', () => {
    const cmds = runs(build).join(' && ');
    const order = ['npm ci', 'npm run build', 'npm prune --omit=dev'].map((c) => cmds.indexOf(c));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    for (const s of stages) {
      for (const m of runs(s)
        .join(' ')
        .matchAll(/npm run ([\w:-]+)/g))
        expect(pkg.scripts).toHaveProperty(m[1]!);
    }
  });

  it('every COPY source exists in the context and is not excluded by .dockerignore', () => {
    const ignored = dockerignore();
    const names = new Set(stages.map((s) => s.name));
    for (const s of stages) {
      for (const ins of s.body.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
        const c = copyArgs(ins);
        if (c.from !== undefined) {
          expect(names.has(c.from), `line ${ins.line}: stage ${c.from}`).toBe(true);
          continue;
        }
        for (const src of c.sources) {
          expect(existsSync(join(ROOT, src)), `line ${ins.line}: ${src}`).toBe(true);
          expect(ignored(src), `line ${ins.line}: ${src} is in .dockerignore`).toBe(false);
        }
      }
    }
    expect(['node_modules', 'dist', '.git', 'reports'].every((p) => ignored(p))).toBe(true);
  });

  it('copies every folder the build compiles and every file the build script reads', () => {
    const copied = build.body.filter((i) => i.op === 'COPY').flatMap((i) => copyArgs(i).sources);
    const tsBuild = JSON.parse(read('tsconfig.build.json')) as { extends: string; include: string[] };
    for (const dir of tsBuild.include) expect(copied, `tsconfig.build.json include ${dir}`).toContain(dir);
    expect(copied).toContain(tsBuild.extends.replace(/^\.\//, ''));
    expect(copied).toContain('tsconfig.build.json');
    for (const m of pkg.scripts.build!.matchAll(/(?:node|-p)\s+(\S+)/g)) {
      const file = m[1]!;
      expect(
        copied.some((c) => file === c || file.startsWith(`${c}/`)),
        `build script reads ${file}`,
      ).toBe(true);
    }
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json']));
  });

  it('the runtime stage holds only the built app, its production modules and the example configs', () => {
    const copies = runtime.body.filter((i) => i.op === 'COPY').map(copyArgs);
    const fromBuild = copies.filter((c) => c.from === 'build').flatMap((c) => c.sources);
    expect(fromBuild.sort()).toEqual(['/src/dist', '/src/node_modules', '/src/package.json']);
    const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    for (const f of fromContext)
      expect(f).toMatch(/^(config\.(relayer|miner)\.example\.yaml|localnet\/genesis\.sample\.yaml)$/);
    expect(runtime.body.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it('runs as the non-root user the Kubernetes manifests expect', () => {
    const user = runtime.body.filter((i) => i.op === 'USER').pop()?.args;
    expect(user).toBeDefined();
    const uid = user!.split(':')[0]!;
    expect(['0', 'root']).not.toContain(uid);
    const deploy = parse(read('k8s/base/relayer-deployment.yaml')) as {
      spec: { template: { spec: { securityContext: { runAsUser: number } } } };
    };
    expect(Number(uid)).toBe(deploy.spec.template.spec.securityContext.runAsUser);
  });

  it('starts the CLI: ENTRYPOINT node dist/cmd/main.js, which the build emits from cmd/main.ts', () => {
    const argv = runtimeEntrypoint(read('Dockerfile'));
    expect(argv).toEqual(['node', 'dist/cmd/main.js']);
    const workdir = runtime.body.filter((i) => i.op === 'WORKDIR').pop()!.args;
    const ts = JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string; rootDir: string } };
    expect(ts.compilerOptions.rootDir).toBe('.');
    expect(argv[1]).toBe(posix.join(ts.compilerOptions.outDir, 'cmd/main.js'));
    expect(existsSync(join(ROOT, 'cmd/main.ts'))).toBe(true);
    expect(Object.values(pkg.bin)).toContain(argv[1]);
    const fromBuild = runtime.body
      .filter((i) => i.op === 'COPY' && copyArgs(i).from === 'build')
      .map(copyArgs);
    expect(
      fromBuild.some((c) => c.sources[0] === '/src/dist' && posix.join(workdir, c.dest) === '/app/dist'),
    ).toBe(true);
  });

  it('exposes the relayer and miner listener ports of the example configs', () => {
    const exposed = runtime.body
      .filter((i) => i.op === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map(Number);
    const relayer = parse(read('config.relayer.example.yaml')) as Record<
      string,
      { addr?: string; listen_addr?: string }
    >;
    const miner = parse(read('config.miner.example.yaml')) as Record<string, { addr?: string }>;
    const port = (a: string | undefined) => Number(a!.split(':').pop());
    const wanted = [
      port(relayer.listen_addr as unknown as string),
      port(relayer.health_check!.addr),
      port(relayer.grpc!.listen_addr),
      port(relayer.websocket!.listen_addr),
      port(relayer.metrics!.addr),
      port(miner.metrics!.addr),
    ];
    expect(exposed).toEqual(expect.arrayContaining(wanted));
  });
});

describe('Makefile', () => {
  const text = read('Makefile');
  const targets = new Map<string, { help: string | undefined; recipe: string[] }>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_-]+):(?!=)[^#]*(?:## (.*))?$/.exec(line);
    if (m !== null) {
      current = m[1]!;
      targets.set(current, { help: m[2], recipe: [] });
    } else if (line.startsWith('\t') && current !== undefined)
      targets.get(current)!.recipe.push(line.slice(1));
    else if (line.trim() !== '' && !line.startsWith('#')) current = undefined;
    expect(line.startsWith('    ') && current !== undefined, `recipe lines need a tab: ${line}`).toBe(false);
  }

  it('has the documented targets, each with a help line and declared .PHONY', () => {
    const phony = /^\.PHONY:(.*)$/m.exec(text)![1]!.trim().split(/\s+/);
    for (const t of [
      'build',
      'test',
      'bench',
      'lint',
      'typecheck',
      'image',
      'tilt-up',
      'tilt-down',
      'help',
    ]) {
      expect(targets.get(t)?.help, `target ${t}`).toBeTruthy();
      expect(phony).toContain(t);
    }
    expect(/^\.DEFAULT_GOAL := help$/m.test(text)).toBe(true);
  });

  it('recipes name npm scripts, files and folders that exist', () => {
    for (const [name, t] of targets) {
      const recipe = t.recipe.join('\n');
      for (const m of recipe.matchAll(/npm run ([\w:-]+)/g))
        expect(pkg.scripts, `make ${name}`).toHaveProperty(m[1]!);
      for (const m of recipe.matchAll(/(?:vitest run|kubectl kustomize|bash) (\S+)/g)) {
        expect(existsSync(join(ROOT, m[1]!)), `make ${name}: ${m[1]}`).toBe(true);
      }
    }
    expect(targets.get('image')!.recipe.join()).toMatch(/build -t \$\(IMAGE\):\$\(TAG\) \.$/);
    expect(targets.get('tilt-up')!.recipe.join()).toMatch(/\$\(TILT\) up/);
    expect(targets.get('tilt-down')!.recipe.join()).toMatch(/\$\(TILT\) down/);
    expect(existsSync(join(ROOT, 'Tiltfile'))).toBe(true);
  });
});
