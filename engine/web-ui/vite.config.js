import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// The UI calls /api/v1/... on VITE_API; empty means the page's own origin,
// which is the engine that serves this build.
process.env.VITE_API ??= '';

// The UI's only code editor (Monaco) edits markdown, which needs no language worker, yet
// the package bundles the TypeScript, CSS, HTML and JSON ones (~8 MB): build the generic
// editor worker in their place.
const unusedMonacoWorkers = {
  name: 'capstan-unused-monaco-workers',
  enforce: 'pre',
  resolveId(id, importer) {
    if (/^monaco-editor\/esm\/vs\/language\/\w+\/\w+\.worker\?worker$/.test(id)) {
      return this.resolve('monaco-editor/esm/vs/editor/editor.worker?worker', importer, { skipSelf: true });
    }
  },
};

export default defineConfig({
  plugins: [unusedMonacoWorkers, sveltekit()],
  build: { chunkSizeWarningLimit: 5000 },
});
