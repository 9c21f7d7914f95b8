// Starts GraphiQL (salesops). Loaded as a file, not inline, so the page's
// Content-Security-Policy can forbid inline scripts. The endpoint and the
// headers the editor opens with come from data attributes of #graphiql.
(function () {
  "use strict";
  var el = document.getElementById("graphiql");
  var endpoint = el.getAttribute("data-endpoint") || "/graphql";
  var headers = el.getAttribute("data-headers") || "";
  // Subscriptions go over WebSocket (graphql-transport-ws) to the same
  // endpoint; the headers editor's Authorization becomes connection_init's
  // payload. (Queries and mutations are checked in headless Chromium by
  // .ci/graphiql_browser.py; a subscription from GraphiQL is not yet.)
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl:
      (location.protocol === "https:" ? "wss://" : "ws://") + location.host + endpoint,
  });
  var props = {
    fetcher: fetcher,
    defaultQuery:
      "# Run: the play button or Ctrl-Enter.\n" +
      "# Docs: the book icon, top left.\n" +
      "query Me {\n  me {\n    role\n    subject\n  }\n}\n",
    // The demo's token is filled in; nothing is kept in localStorage.
    shouldPersistHeaders: false,
  };
  if (headers) {
    props.headers = headers;
    props.defaultHeaders = headers;
    props.defaultEditorToolsVisibility = "headers";
  }
  el.textContent = "";
  ReactDOM.createRoot(el).render(React.createElement(GraphiQL, props));
})();
