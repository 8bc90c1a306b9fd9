// Who is logged in: fetched once from /api/auth/me, shared through a context.
import { createContext, useCallback, useContext, useMemo, type ReactNode } from "react";
import { api, ok } from "./client";
import type { Me } from "./types";
import { useQuery } from "./useQuery";

interface Auth {
  me: Me | null;
  loading: boolean;
  login: (username: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<Auth>({
  me: null,
  loading: true,
  login: async () => {},
  logout: async () => {},
});

export function AuthProvider({ children }: { children: ReactNode }) {
  const query = useQuery("me", (signal) => ok(api.GET("/api/auth/me", { signal })));
  const { reload } = query;
  const login = useCallback(
    async (username: string, password: string) => {
      await ok(api.POST("/api/auth/login", { body: { username, password } }));
      reload();
    },
    [reload],
  );
  const logout = useCallback(async () => {
    await api.POST("/api/auth/logout");
    reload();
  }, [reload]);
  const value = useMemo(
    () => ({ me: query.error ? null : (query.data ?? null), loading: query.loading, login, logout }),
    [query.data, query.error, query.loading, login, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  return useContext(AuthContext);
}
