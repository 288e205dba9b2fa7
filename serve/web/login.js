'use strict';
document.getElementById('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const btn = document.getElementById('login'), box = document.getElementById('error');
  btn.disabled = true;
  box.hidden = true;
  try {
    await tsim.api('POST', '/api/login', {
      username: document.getElementById('username').value,
      password: document.getElementById('password').value,
    });
    // Only same-site paths: never an open redirect.
    let next = new URLSearchParams(location.search).get('next') || '/';
    if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) next = '/';
    location.href = next;
  } catch (e) {
    box.textContent = e.status === undefined ? 'Cannot reach the server. Please try again.' : e.message;
    box.hidden = false;
    btn.disabled = false;
  }
});
