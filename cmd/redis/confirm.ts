/** Interactive confirmation for destructive subcommands; refused when stdin is not a terminal. */
import { createInterface } from 'node:readline/promises';
import { RedisCliUsageError } from './context.js';

export interface ConfirmIo {
  isTty: boolean;
  /** Prints `question` and resolves with the line typed. */
  ask(question: string): Promise<string>;
}

export function processIo(): ConfirmIo {
  return {
    isTty: process.stdin.isTTY === true,
    ask: async (q) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(q);
      } finally {
        rl.close();
      }
    },
  };
}

/** Resolves true when `yes` or the operator typed `word`; throws when no terminal can ask. */
export async function confirmDestructive(
  yes: boolean,
  io: ConfirmIo,
  question: string,
  word = 'DELETE',
): Promise<boolean> {
  if (yes) return true;
  if (!io.isTty) {
    throw new RedisCliUsageError(
      'refusing to delete without confirmation: stdin is not a terminal; pass --yes',
    );
  }
  const answer = await io.ask(`${question}\nType ${word} to confirm: `);
  return answer.trim() === word;
}
