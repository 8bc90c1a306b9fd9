import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { Field } from "../components/Form";
import { Notice } from "../components/Notice";
import { useAuth } from "../lib/auth";
import { errorText } from "../lib/client";

/** Log in with a local account (single sign-on, where configured, needs no form). */
export function LoginPage() {
  const { me, login } = useAuth();
  const navigate = useNavigate();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await login(username, password);
      navigate("/");
    } catch (err) {
      setError(err instanceof Error && "status" in err && err.status === 401 ? "Wrong user name or password." : errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="page login">
      <h1>Log in</h1>
      {me && <Notice kind="info" text={`Logged in as ${me.username}.`} />}
      <form onSubmit={(e) => void submit(e)} data-testid="login-form">
        <Field label="User name">
          <input value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" required data-testid="login-username" />
        </Field>
        <Field label="Password">
          <input
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            autoComplete="current-password"
            required
            data-testid="login-password"
          />
        </Field>
        <button type="submit" disabled={busy} data-testid="login-submit">
          Log in
        </button>
      </form>
      <Notice text={error} />
    </section>
  );
}
