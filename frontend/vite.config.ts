import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The API (FastAPI, port 8080) serves the built files; `npm run dev` proxies /api to it.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../services/api/src/hydra_api/static",
    emptyOutDir: true,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: { "/api": { target: "http://127.0.0.1:8080", changeOrigin: false } },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
