// Sign-in for the module's pages (docs/auth.md). A page is opened with the browser's own sign-in prompt (Basic),
// with ?token=<token> in its URL, or through the sign-in form. Websockets cannot carry a header, so the page
// signs its websocket and event-stream URLs with ?token= and its media requests with Authorization: Bearer;
// a page opened with a password first trades it for a session token (POST /api/session). Without an auth key
// in the twin the module is open and this script changes nothing.
(function () {
  'use strict';
  const KEY = 'gst-iotedge-token';
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get('token');
  let token = fromUrl || sessionStorage.getItem(KEY) || null;
  if (fromUrl) sessionStorage.setItem(KEY, fromUrl);

  function withToken(url) {
    if (!token) return url;
    return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }

  /** The page again, signed with `next` (other parameters kept). */
  function reopen(next) {
    const query = new URLSearchParams(location.search);
    query.set('token', next);
    sessionStorage.setItem(KEY, next);
    location.replace(location.pathname + '?' + query.toString());
  }

  function form() {
    return document.getElementById('gst-signin');
  }

  /** Shows the sign-in form with why it is needed. */
  function showSignIn(reason) {
    const f = form();
    if (!f) return;
    const why = document.getElementById('gst-signin-reason');
    if (why) why.textContent = reason ? reason + ' ' : '';
    f.hidden = false;
  }

  async function signIn(user, password) {
    const basic = btoa(String.fromCharCode(...new TextEncoder().encode(user + ':' + password)));
    const response = await fetch('/api/session', { method: 'POST', headers: { authorization: 'Basic ' + basic }, credentials: 'omit' });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || 'sign-in refused (HTTP ' + response.status + ')');
    return body.token;
  }

  function wireForm() {
    const f = form();
    if (!f) return;
    f.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(f);
      try {
        const given = String(data.get('token') || '').trim();
        const next = given || (await signIn(String(data.get('user') || ''), String(data.get('password') || '')));
        if (next) reopen(next);
        else location.reload();
      } catch (error) {
        showSignIn(error.message);
      }
    });
  }

  /** Resolves once requests can be signed: a token from the URL or storage, a session for a password, or none (open). */
  async function start() {
    if (document.body && document.body.dataset.gstSignin) {
      // The module refused this page. A token kept from before that was not tried yet is tried once.
      if (token && !fromUrl) return reopen(token);
      sessionStorage.removeItem(KEY);
      token = null;
      showSignIn('');
      return new Promise(() => undefined);
    }
    if (token) return;
    // Opened with the browser's prompt (its Basic credentials go along) or open: ask for a session token.
    const response = await fetch('/api/session', { method: 'POST', credentials: 'same-origin' }).catch(() => null);
    if (response && response.ok) {
      const body = await response.json().catch(() => ({}));
      if (body.token) {
        token = body.token;
        sessionStorage.setItem(KEY, token);
      }
    } else if (response && (response.status === 401 || response.status === 403)) {
      showSignIn('Sign in to watch.');
    }
  }

  const ready = new Promise((resolve) => {
    const go = () => {
      wireForm();
      start().then(resolve, resolve);
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', go);
    else go();
  });

  window.gstAuth = {
    ready,
    get token() {
      return token;
    },
    /** `url` with the token as `?token=` (websockets and EventSource cannot carry a header). */
    withToken,
    /** The websocket URL of `path` on this host, signed. */
    wsUrl(path) {
      return withToken((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path);
    },
    /** hls.js `xhrSetup`: media requests carry the token as a header (kept out of URLs and logs). */
    xhrSetup(xhr) {
      if (token) xhr.setRequestHeader('Authorization', 'Bearer ' + token);
    },
    /** Headers for fetch() and dash.js request interceptors. */
    headers() {
      return token ? { Authorization: 'Bearer ' + token } : {};
    },
    /**
     * Whether the module still takes this page's sign-in; false (and the form shown) when it does not, so a page
     * whose rights went does not keep retrying (each retry would count as a failed sign-in for its address).
     */
    async stillSignedIn() {
      const response = await fetch('/api/session', { method: 'POST', headers: this.headers(), credentials: token ? 'omit' : 'same-origin' }).catch(() => null);
      if (response && (response.status === 401 || response.status === 403)) {
        this.refused('Sign in again.');
        return false;
      }
      return true; // also when the module cannot be reached: it may be restarting
    },
    /** A request the module refused (401/403): the form, to sign in again. */
    refused(reason) {
      sessionStorage.removeItem(KEY);
      showSignIn(reason || 'Sign in again.');
    },
  };
})();
