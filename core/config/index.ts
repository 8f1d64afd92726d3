export { ConfigError, IssueList, dottedPath, formatIssue, type ConfigIssue } from './issues.js';
export { parseGoDurationMs } from './duration.js';
export {
  MAX_YAML_NESTING,
  deepFreeze,
  loadConfigText,
  parseYaml,
  validateConfigValue,
  yamlNestingDepth,
  zodIssues,
  type DeepReadonly,
  type LoadOptions,
} from './load.js';
export {
  LOG_LEVELS,
  goDuration,
  listenAddr,
  keysSection,
  loggingSection,
  metricsSection,
  namespaceSection,
  nonNegativeInt,
  pprofSection,
  redisSection,
  type LoggingConfig,
  type MetricsConfig,
  type NamespaceConfig,
  type PprofConfig,
  type RedisConfig,
} from './sections.js';
