#!/usr/bin/env python3
"""Python `gql` against a live salesops server, as an integrator would use it.

  python3 .ci/gql_client.py <http url> <admin token>

1. fetches the schema by standard introspection (fetch_schema_from_transport)
   and validates documents against it on the client;
2. runs a query and a mutation over HTTP;
3. subscribes to dealChanged over WebSocket (graphql-transport-ws) and sees
   the mutation it makes next.
Needs `pip install "gql[requests,websockets]"`. Prints "N passed, 0 failed".
"""
import asyncio
import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport
from gql.transport.websockets import WebsocketsTransport


def main(url, token):
    passed = 0
    headers = {"Authorization": f"Bearer {token}"}
    http = RequestsHTTPTransport(url=url, headers=headers, timeout=30)
    with Client(transport=http, fetch_schema_from_transport=True) as session:
        schema = session.client.schema
        assert schema.query_type.name == "Query", schema.query_type
        assert schema.subscription_type.name == "Subscription", schema.subscription_type
        assert "dealChanged" in schema.subscription_type.fields
        print(f"ok   schema fetched by introspection: {len(schema.type_map)} types")
        passed += 1
        # Validated against the fetched schema before it is sent.
        try:
            session.execute(gql("{ deals { noSuchField } }"))
            raise AssertionError("an invalid document passed client-side validation")
        except Exception as e:  # graphql.GraphQLError
            assert "noSuchField" in str(e), e
        print("ok   client-side validation against the fetched schema")
        passed += 1
        page = session.execute(
            gql("query { deals(first: 2, orderBy: AMOUNT_DESC, filter: {status: [OPEN]}) { totalCount nodes { id name version amount } } }")
        )
        deals = page["deals"]["nodes"]
        assert len(deals) == 2 and page["deals"]["totalCount"] > 2, page
        print(f"ok   query: {page['deals']['totalCount']} open deals, largest {deals[0]['name']}")
        passed += 1

    async def live():
        ws_url = url.replace("http://", "ws://")
        ws = WebsocketsTransport(
            url=ws_url,
            init_payload=headers,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        deal = deals[1]
        async with Client(transport=ws) as wss:
            sub = gql(
                "subscription { dealChanged { kind version deal { id name } revision { changes { field from to } } } }"
            )
            gen = wss.subscribe(sub)
            first = asyncio.ensure_future(gen.__anext__())
            await asyncio.sleep(1.0)  # the subscription is registered
            rename = gql(
                "mutation($id: ID!, $v: Int) { updateDeal(id: $id, patch: {name: \"Renamed by gql\"}, expectedVersion: $v) { version } }"
            )
            with Client(transport=RequestsHTTPTransport(url=url, headers=headers, timeout=30)) as s:
                res = s.execute(rename, variable_values={"id": deal["id"], "v": deal["version"]})
            event = (await asyncio.wait_for(first, 15))["dealChanged"]
            await gen.aclose()
            assert event["deal"]["id"] == deal["id"], event
            assert event["version"] == res["updateDeal"]["version"], event
            assert event["revision"]["changes"] == [
                {"field": "name", "from": deal["name"], "to": "Renamed by gql"}
            ], event
            print(f"ok   subscription over graphql-transport-ws: {event['kind']} v{event['version']}")

    asyncio.run(live())
    passed += 1
    print(f"gql: {passed} passed, 0 failed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
