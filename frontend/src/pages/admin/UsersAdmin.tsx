import { useState } from "react";
import type { components } from "../../api/schema";
import { useAdminActions, type AdminActions } from "../../components/admin/useAdminActions";
import { Field, Options, SubmitForm, TextField } from "../../components/Form";
import { ListTable } from "../../components/ListTable";
import { Notice } from "../../components/Notice";
import { api, ok } from "../../lib/client";
import { useQuery } from "../../lib/useQuery";

type User = components["schemas"]["UserOut"];
type Role = components["schemas"]["Role"];
type UserUpdate = components["schemas"]["UserUpdate"];

export const ROLES: Role[] = ["admin", "developer", "expert", "labeler", "viewer", "liaison"];
const USERNAME_RULE = /^[A-Za-z0-9_.@-]{1,64}$/;

/** One user: role, active or disabled, and a new password. */
function UserRow({ user, isMe, act }: { user: User; isMe: boolean; act: AdminActions["act"] }) {
  const [role, setRole] = useState<Role>(user.role);
  const [password, setPassword] = useState("");
  const update = async (body: UserUpdate) => {
    if (await act(() => ok(api.PATCH("/api/users/{user_id}", { params: { path: { user_id: user.id } }, body })))) setPassword("");
  };
  return (
    <tr className={user.active ? "" : "disabled"} data-testid="user-row" data-username={user.username} data-role={user.role} data-active={String(user.active)}>
      <td>{user.username}</td>
      <td>{user.display_name}</td>
      <td>
        <select value={role} disabled={isMe} onChange={(e) => setRole(e.target.value as Role)} data-testid="user-role" aria-label={`role of ${user.username}`}>
          <Options values={ROLES} />
        </select>{" "}
        <button type="button" disabled={role === user.role} onClick={() => void update({ role })} data-testid="user-save-role">
          Save role
        </button>
      </td>
      <td>{user.has_password ? "local" : "SSO"}</td>
      <td>
        {user.active ? "active" : "disabled"}{" "}
        <button type="button" disabled={isMe} onClick={() => void update({ active: !user.active })} data-testid="user-toggle-active">
          {user.active ? "Disable" : "Enable"}
        </button>
      </td>
      <td>
        <input type="password" value={password} placeholder="new password" autoComplete="new-password" onChange={(e) => setPassword(e.target.value)} data-testid="user-password" aria-label={`new password of ${user.username}`} />{" "}
        <button type="button" disabled={password.length < 8} onClick={() => void update({ password })} data-testid="user-set-password">
          Reset password
        </button>
      </td>
      <td className="muted">{user.permissions.length ? `${user.permissions.length} plot types` : "—"}</td>
    </tr>
  );
}

/** A new local user (no password: single sign-on only). */
function NewUserForm({ act }: { act: AdminActions["act"] }) {
  const [username, setUsername] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [role, setRole] = useState<Role>("labeler");
  const [password, setPassword] = useState("");
  const valid = USERNAME_RULE.test(username) && (password === "" || password.length >= 8);
  const create = async () => {
    if (await act(() => ok(api.POST("/api/users", { body: { username, display_name: displayName, role, password: password || null } })))) {
      setUsername("");
      setDisplayName("");
      setPassword("");
    }
  };
  return (
    <SubmitForm
      onSubmit={() => void create()}
      testId="new-user"
      submit="Create user"
      submitTestId="new-user-create"
      disabled={!valid}
      after={password !== "" && password.length < 8 && <span className="muted">a password has at least 8 characters</span>}
    >
      <TextField label="username" value={username} maxLength={64} onChange={setUsername} testId="new-user-name" />
      <TextField label="name" value={displayName} maxLength={128} onChange={setDisplayName} testId="new-user-display" />
      <Field label="role">
        <select value={role} onChange={(e) => setRole(e.target.value as Role)} data-testid="new-user-role">
          <Options values={ROLES} />
        </select>
      </Field>
      <Field label="password">
        <input type="password" value={password} autoComplete="new-password" placeholder="empty: SSO only" onChange={(e) => setPassword(e.target.value)} data-testid="new-user-password" />
      </Field>
    </SubmitForm>
  );
}

/** Users: create, change role, disable or enable, reset a password. */
export function UsersAdmin({ myId }: { myId: number }) {
  const { version, error, act } = useAdminActions();
  const users = useQuery(`admin-users-${version}`, (signal) => ok(api.GET("/api/users", { params: { query: { limit: 500 } }, signal })));
  return (
    <div data-testid="users-admin">
      <h2>Users</h2>
      <p className="muted">Disabling a user ends their sessions at once. Labellers and experts label the plot types granted on the Permissions tab.</p>
      <Notice text={users.error || error} />
      <NewUserForm act={act} />
      <ListTable testId="users" columns={["Username", "Name", "Role", "Login", "State", "Password", "May label"]} rows={users.data?.items ?? []}>
        {(u) => <UserRow key={`${u.id}-${version}`} user={u} isMe={u.id === myId} act={act} />}
      </ListTable>
    </div>
  );
}
