import { NavLink, Navigate, Route, Routes } from "react-router-dom";
import { Notice } from "../../components/Notice";
import { useAuth } from "../../lib/auth";
import { AuditAdmin } from "./AuditAdmin";
import { NewsAdmin } from "./NewsAdmin";
import { PermissionsAdmin } from "./PermissionsAdmin";
import { PlotTypesAdmin } from "./PlotTypesAdmin";
import { RunConditionsAdmin } from "./RunConditionsAdmin";
import { UsersAdmin } from "./UsersAdmin";
import "./admin.css";

// [path, title, admins only]: developers see plot types (read-only), news and run conditions.
const TABS: [string, string, boolean][] = [
  ["users", "Users", true],
  ["permissions", "Permissions", true],
  ["audit", "Audit log", true],
  ["plot-types", "Plot types", false],
  ["news", "News", false],
  ["run-conditions", "Run conditions", false],
];

/** The admin pages under /admin: people, permissions, the audit log, plot types, news and
 * run conditions. Admins see all; developers the ones they may use. */
export function AdminPage() {
  const { me, loading } = useAuth();
  if (!me) {
    return <section className="page admin">{loading ? <p className="muted">Loading…</p> : <Notice text="Log in as an admin to use the admin pages." />}</section>;
  }
  if (me.role !== "admin" && me.role !== "developer") {
    return (
      <section className="page admin">
        <Notice text="The admin pages are for admins (and, in part, developers)." />
      </section>
    );
  }
  const isAdmin = me.role === "admin";
  const tabs = TABS.filter(([, , adminOnly]) => isAdmin || !adminOnly);
  return (
    <section className="page admin" data-testid="admin-page">
      <nav className="admin-tabs">
        {tabs.map(([path, title]) => (
          <NavLink key={path} to={`/admin/${path}`} data-testid={`admin-tab-${path}`}>
            {title}
          </NavLink>
        ))}
      </nav>
      <Routes>
        <Route index element={<Navigate to={isAdmin ? "users" : "plot-types"} replace />} />
        {isAdmin && <Route path="users" element={<UsersAdmin myId={me.id} />} />}
        {isAdmin && <Route path="permissions" element={<PermissionsAdmin />} />}
        {isAdmin && <Route path="audit" element={<AuditAdmin />} />}
        <Route path="plot-types" element={<PlotTypesAdmin canEdit={isAdmin} />} />
        <Route path="news" element={<NewsAdmin />} />
        <Route path="run-conditions" element={<RunConditionsAdmin canDelete={isAdmin} />} />
        <Route path="*" element={<Notice text="No such admin page (or it is for admins only)." />} />
      </Routes>
    </section>
  );
}
