// Storefront's GraphiQL page: mounts GraphiQL (loaded before this file) with the
// endpoint and example query of the page's JSON config.
//
// Headers typed into the editor (a pasted token) are kept out of localStorage until
// the user turns on "Persist headers" in GraphiQL's settings dialog, which GraphiQL
// records as graphiql:shouldPersistHeaders. GraphiQL 3 keeps headers in three places:
// the editor's value, each tab, and the query history; it leaves them in the history
// even with persistence off. So GraphiQL is given a storage that writes them nowhere
// until the user opts in.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);

  var PERSIST = "graphiql:shouldPersistHeaders";
  var HEADERS = "graphiql:headers";
  var WITH_HEADERS = [HEADERS, "graphiql:tabState", "graphiql:queries", "graphiql:favorites"];
  // Marks a browser that has run this page since headers became opt-in: before, the
  // page forced persistence and GraphiQL recorded "true" without asking.
  var OPT_IN_ASKED = "storefront:graphiql:headersOptIn";

  function withoutHeaders(key, value) {
    if (key === HEADERS || value === null) return null;
    if (WITH_HEADERS.indexOf(key) < 0) return value;
    try {
      return JSON.stringify(JSON.parse(value), function (name, item) {
        return name === "headers" ? null : item;
      });
    } catch (error) {
      return null;
    }
  }

  function store(key, value) {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  }

  function persisting() {
    return localStorage.getItem(PERSIST) === "true";
  }

  function scrub() {
    WITH_HEADERS.forEach(function (key) {
      store(key, withoutHeaders(key, localStorage.getItem(key)));
    });
  }

  function headerStorage() {
    if (localStorage.getItem(OPT_IN_ASKED) !== "1") {
      localStorage.setItem(PERSIST, "false");
      scrub();
      localStorage.setItem(OPT_IN_ASKED, "1");
    }
    var written = {}; // what GraphiQL last asked to store, headers included
    return {
      getItem: function (key) {
        var value = localStorage.getItem(key);
        return persisting() ? value : withoutHeaders(key, value);
      },
      setItem: function (key, value) {
        if (key === PERSIST) {
          localStorage.setItem(key, value);
          if (value !== "true") return scrub();
          // Turned on: store what was held back, as GraphiQL meant to.
          return WITH_HEADERS.forEach(function (name) {
            if (name in written) store(name, written[name]);
          });
        }
        written[key] = value;
        store(key, persisting() ? value : withoutHeaders(key, value));
      },
      removeItem: function (key) {
        // At start-up, before its editor exists, GraphiQL drops the saved headers
        // (it stores the empty editor's value): keep them for a user who opted in.
        var editor = document.querySelector(".graphiql-editor-tool .CodeMirror");
        if (key === HEADERS && editor === null && persisting()) return;
        delete written[key];
        localStorage.removeItem(key);
      },
      clear: function () {
        Object.keys(localStorage).forEach(function (key) {
          if (key.indexOf("graphiql:") === 0) localStorage.removeItem(key);
        });
      },
      get length() {
        return Object.keys(localStorage).filter(function (key) {
          return key.indexOf("graphiql:") === 0;
        }).length;
      }
    };
  }

  var storage = null; // no localStorage (blocked, or a sandbox): nothing is kept
  try {
    storage = headerStorage();
  } catch (error) {
    storage = null;
  }

  async function fetcher(params, options) {
    var headers = new Headers({
      "Accept": "application/graphql-response+json, application/json",
      "Content-Type": "application/json"
    });
    var extra = (options && options.headers) || {};
    Object.keys(extra).forEach(function (name) { headers.set(name, extra[name]); });
    var response = await fetch(config.endpoint, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(params),
      credentials: "same-origin"
    });
    var text = await response.text();
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Error(response.status + " " + response.statusText + ": " + text.slice(0, 2000));
    }
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.defaultQuery,
      isHeadersEditorEnabled: true,
      storage: storage,
      // GraphiQL applies this on start-up: the user's recorded choice, off by default.
      shouldPersistHeaders: storage !== null && storage.getItem(PERSIST) === "true",
      showPersistHeadersSettings: storage !== null,
      defaultEditorToolsVisibility: "headers"
    })
  );
})();
