import { NavLink, Outlet } from "react-router-dom";
import { useAuth } from "../lib/auth";
import { NewsBanner } from "./NewsBanner";
import { SummaryBar } from "./SummaryBar";

const PAGES: [string, string][] = [
  ["/", "Run"],
  ["/labeler", "Labeler"],
  ["/library", "Library"],
  ["/log", "Log"],
  ["/status", "Status"],
];

/** Top navigation, summary figures and news, around every page. */
export function Layout() {
  const { me, logout } = useAuth();
  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">HYDRA</span>
        <nav>
          {PAGES.map(([to, name]) => (
            <NavLink key={to} to={to} end={to === "/"} data-testid={`nav-${name.toLowerCase()}`}>
              {name}
            </NavLink>
          ))}
          {me?.role === "admin" && (
            <NavLink to="/labels" data-testid="nav-labels">
              Labels
            </NavLink>
          )}
          {(me?.role === "admin" || me?.role === "developer") && (
            <NavLink to="/admin" data-testid="nav-admin">
              Admin
            </NavLink>
          )}
        </nav>
        <SummaryBar />
        <div className="user">
          {me ? (
            <>
              <span data-testid="current-user">
                {me.display_name || me.username} <span className="muted">({me.role})</span>
              </span>
              <button type="button" onClick={() => void logout()} data-testid="logout">
                Log out
              </button>
            </>
          ) : (
            <NavLink to="/login" data-testid="nav-login">
              Log in
            </NavLink>
          )}
        </div>
      </header>
      <NewsBanner />
      <main>
        <Outlet />
      </main>
    </div>
  );
}
