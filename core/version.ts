/** Release version of this build; kept equal to package.json "version" by a test. */
export const VERSION = '0.1.0';
