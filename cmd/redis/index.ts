export { registerRedisCommand, REDIS_SUBCOMMANDS, type RedisCliIo } from './command.js';
export {
  cliOver,
  connect,
  resolveTarget,
  targetFromConfigText,
  formatTable,
  type RedisCli,
  type RedisTarget,
} from './context.js';
