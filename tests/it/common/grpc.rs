//! gRPC test clients, and proto3 JSON for Envoy's messages (read with the descriptors
//! opa-envoy-plugin serves by reflection, so recorded exchanges replay as they were sent).

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value as Json;
use tonic::transport::Channel;
use verdict::server::grpc::pb::decisions_client::DecisionsClient;

use super::Server;

const ENVOY_DESCRIPTORS: &[u8] = include_bytes!("../../../proto/envoy-authz-descriptors.pb");

fn pool() -> DescriptorPool {
    DescriptorPool::decode(ENVOY_DESCRIPTORS).unwrap()
}

pub async fn channel(server: &Server) -> Channel {
    connect(server.grpc_addr.as_ref().expect("the gRPC listener is on")).await
}

/// A connection to a gRPC listener at `host:port`.
pub async fn connect(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn authz_client(server: &Server) -> AuthorizationClient<Channel> {
    AuthorizationClient::new(channel(server).await)
}

pub async fn decisions_client(server: &Server) -> DecisionsClient<Channel> {
    DecisionsClient::new(channel(server).await)
}

/// A CheckRequest from proto3 JSON (field names as in the .proto or in lowerCamelCase).
pub fn check_request_from_json(json: &str) -> CheckRequest {
    let descriptor = pool()
        .get_message_by_name("envoy.service.auth.v3.CheckRequest")
        .unwrap();
    let mut de = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize(descriptor, &mut de).unwrap();
    CheckRequest::decode(message.encode_to_vec().as_slice()).unwrap()
}

/// A CheckResponse as proto3 JSON with the .proto's field names, as the recordings show it.
pub fn response_json(response: &CheckResponse) -> Json {
    let descriptor = pool()
        .get_message_by_name("envoy.service.auth.v3.CheckResponse")
        .unwrap();
    let message = DynamicMessage::decode(descriptor, response.encode_to_vec().as_slice()).unwrap();
    let mut out = serde_json::Serializer::new(Vec::new());
    message
        .serialize_with_options(
            &mut out,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .unwrap();
    serde_json::from_slice(&out.into_inner()).unwrap()
}
