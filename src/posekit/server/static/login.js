// The login page (/login): POST /api/auth/login, then back to the page that sent the
// user here (?next=#/...), else the project list. No inline script: the CSP forbids it.

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

// Only a hash route of this app: never an outside address (no open redirect).
function nextUrl() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return next.startsWith("#/") ? `/${next}` : "/";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  submit.disabled = true;
  try {
    const response = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Posekit-Client": "ui" },
      body: JSON.stringify({
        username: document.getElementById("login-username").value.trim(),
        password: document.getElementById("login-password").value,
      }),
    });
    if (response.ok) {
      location.assign(nextUrl());
      return;
    }
    let detail = `login failed (${response.status})`;
    try {
      const body = await response.json();
      if (typeof body.detail === "string") detail = body.detail;
    } catch (_) {
      // not JSON: keep the status
    }
    error.textContent = detail.charAt(0).toUpperCase() + detail.slice(1) + ".";
  } catch (exc) {
    error.textContent = `Cannot reach the server: ${exc.message}`;
  } finally {
    submit.disabled = false;
  }
});
