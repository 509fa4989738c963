import defaultTheme from 'tailwindcss/defaultTheme';
// The package's theme (colours, dark mode variables); its exports map has no `require`
// condition, so tailwind's config loader takes the file by path.
import temporal, { textStyles } from './node_modules/@temporalio/ui/dist/theme/plugin.js';

export default {
  // The package's components carry the class names: scan its dist too.
  content: ['./src/**/*.{html,js,svelte}', './node_modules/@temporalio/ui/dist/**/*.{html,js,svelte}'],
  darkMode: ['selector', '[data-theme="dark"]'],
  theme: {
    fontFamily: {
      sans: ['Inter Variable', ...defaultTheme.fontFamily.sans],
      mono: ['Noto Sans Mono', ...defaultTheme.fontFamily.mono],
    },
  },
  plugins: [temporal, textStyles],
};
