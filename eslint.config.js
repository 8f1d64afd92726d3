// Lint configuration: typed typescript-eslint rules plus the module boundaries of ARCHITECTURE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// Layers, lowest first. A folder may import any folder on a lower layer, never one on its own
// layer (except itself) or above. `localnet` sits beside the product: only cmd, test and bench use it.
const LAYERS = [
  ['core'],
  ['protocol'],
  ['chain', 'transport', 'rings'],
  ['cache'],
  ['relayer', 'miner'],
  ['cmd'],
];
const PRODUCT = LAYERS.flat();
const LOCALNET_MAY_USE = ['core', 'protocol', 'rings', 'chain'];

function zonesFor(folder, { forTests }) {
  const layer = LAYERS.findIndex((l) => l.includes(folder));
  const forbidden = LAYERS.flatMap((l, i) => (i >= layer ? l : [])).filter((f) => f !== folder);
  // Tests beside the code may use the shared test helpers; product code never may.
  if (!forTests) forbidden.push('test', 'bench');
  if (folder !== 'cmd') forbidden.push('localnet');
  return forbidden.map((from) => ({
    target: `./${folder}`,
    from: `./${from}`,
    message: `${folder}/ may not import ${from}/ (dependency direction: see ARCHITECTURE.md)`,
  }));
}

function boundaryZones({ forTests }) {
  return [
    ...PRODUCT.flatMap((f) => zonesFor(f, { forTests })),
    ...[...PRODUCT.filter((f) => !LOCALNET_MAY_USE.includes(f)), ...(forTests ? [] : ['test', 'bench'])].map(
      (from) => ({
        target: './localnet',
        from: `./${from}`,
        message: `localnet/ may only import ${LOCALNET_MAY_USE.join(', ')}`,
      }),
    ),
  ];
}

const TEST_FILES = ['**/*.test.ts'];

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'reports/',
      'coverage/',
      'protocol/proto/gen/',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { zones: boundaryZones({ forTests: false }) }],
    },
  },
  {
    files: TEST_FILES,
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: boundaryZones({ forTests: true }) }],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
