import adapter from '@sveltejs/adapter-static';

// A single-page app: every route is rendered in the browser; the engine serves
// index.html for any path that is not a file of the build.
export default {
  kit: {
    adapter: adapter({ fallback: 'index.html', precompress: false, strict: false }),
  },
};
