/** What the package ships beside the code, put in the tab's bundle as text by scripts/build-tab.mjs. */
declare module 'promisegrid:shipped' {
  /** `policies/*.js` by name, as src/home/open.ts reads them from the package. */
  export const POLICIES: Readonly<Record<string, string>>;
  /** `merges/*.js` by name. */
  export const MERGES: Readonly<Record<string, string>>;
  /** The version of @endo/module-source bundled: kept analyses name the parser that made them. */
  export const PARSER_VERSION: string;
}
