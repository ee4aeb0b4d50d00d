"""The packaged REST function learns the WebSocket API's URL for the console's config.json."""
from __future__ import annotations

from infra.package import merge_template


def test_the_rest_function_gets_the_websocket_api_url_from_the_app_stack():
    plain = {"Resources": {"APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {}},
                           "WebsocketAPI": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {}}}}
    merged = merge_template(plain, "*")
    variable = merged["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]["CONSOLE_WEBSOCKET_URL"]
    assert variable == {"Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/ws"}
    alone = merge_template({"Resources": {"APIHandler": {}}}, "*")["Resources"].get("APIHandler", {})
    assert "CONSOLE_WEBSOCKET_URL" not in alone.get("Properties", {}).get("Environment", {}).get("Variables", {})
