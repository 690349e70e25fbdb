//! Users, API tokens and who the caller is.

use super::{ReadErrors, WriteErrors};
use crate::error::ApiResult;
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::wire::{
    CreateTokenRequest, CreateUserRequest, ListTokensParams, NewTokenResponse, TokenList, TokenResponse, UpdateUserRequest, UserList, UserResponse,
    WhoAmIResponse,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modelops_core::governance::UserPatch;
use modelops_registry::Registry;

impl JsonRequest for CreateUserRequest {}
impl JsonRequest for UpdateUserRequest {
    const IMMUTABLE: &'static [&'static str] = &["name", "created_at", "created_by"];
}
impl JsonRequest for CreateTokenRequest {}

/// Who the token in the request belongs to, with the roles it carries.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "identity",
    responses((status = 200, description = "The caller", body = WhoAmIResponse), ReadErrors))]
pub(crate) async fn whoami(Actor(principal): Actor) -> Json<WhoAmIResponse> {
    Json((&principal).into())
}

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "identity",
    responses((status = 200, description = "Every user, by name", body = UserList), ReadErrors))]
pub(crate) async fn list_users(State(registry): State<Registry>, Actor(principal): Actor) -> ApiResult<Json<UserList>> {
    let users = registry.list_users(&principal).await?;
    Ok(Json(UserList { users: users.into_iter().map(Into::into).collect() }))
}

/// Creates a user (admins). Give them a token with `POST /api/v1/tokens`.
#[utoipa::path(post, path = "/api/v1/users", tag = "identity",
    request_body = CreateUserRequest,
    responses((status = 201, description = "The new user", body = UserResponse), WriteErrors))]
pub(crate) async fn create_user(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserResponse>)> {
    let user = registry.create_user(&principal, request.into()).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Reads a user.
#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "identity",
    params(("user" = String, Path, description = "User name")),
    responses((status = 200, description = "The user", body = UserResponse), ReadErrors))]
pub(crate) async fn get_user(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<UserResponse>> {
    Ok(Json(registry.get_user(&principal, &path.user()?).await?.into()))
}

/// Changes a user's roles or team, or disables them (admins). A disabled
/// user's tokens sign no one in.
#[utoipa::path(patch, path = "/api/v1/users/{user}", tag = "identity",
    params(("user" = String, Path, description = "User name")),
    request_body = UpdateUserRequest,
    responses((status = 200, description = "The user", body = UserResponse), WriteErrors))]
pub(crate) async fn update_user(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserResponse>> {
    let user = path.user()?;
    let patch = UserPatch::try_from(request)?;
    Ok(Json(registry.update_user(&principal, &user, patch).await?.into()))
}

/// Erases a person (admins; GDPR Art. 17): their key is destroyed, so their
/// name and comments in the audit log no longer open and read as their
/// pseudonym; every other record naming them holds the pseudonym; they are
/// disabled and their tokens revoked. The audit log still verifies end to
/// end. Irreversible.
#[utoipa::path(post, path = "/api/v1/users/{user}/erase", tag = "identity",
    params(("user" = String, Path, description = "User name")),
    responses((status = 200, description = "The erasure", body = crate::wire::ErasureResponse), WriteErrors))]
pub(crate) async fn erase_user(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<crate::wire::ErasureResponse>> {
    let erasure = registry.erase_user(&principal, &path.user()?).await?;
    Ok(Json(crate::wire::ErasureResponse { pseudonym: erasure.pseudonym, legacy_events: erasure.legacy_events }))
}

/// Lists tokens: the caller's, or (admins) another user's or everyone's
/// (`user=*`). Never the secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity",
    params(ListTokensParams),
    responses((status = 200, description = "Tokens, oldest first", body = TokenList), ReadErrors))]
pub(crate) async fn list_tokens(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<ListTokensParams>,
) -> ApiResult<Json<TokenList>> {
    if let Some(user) = &params.user {
        modelops_core::name::check_filter("user", user)?;
    }
    let user = match params.user.as_deref() {
        Some("*") => None,
        Some(u) => Some(u),
        None => Some(principal.name()),
    };
    let tokens = registry.list_tokens(&principal, user).await?;
    Ok(Json(TokenList { tokens: tokens.into_iter().map(Into::into).collect() }))
}

/// Creates a token for the caller, or (admins) for another user. The token
/// text is in this answer only; it is stored as a hash.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity",
    request_body = CreateTokenRequest,
    responses((status = 201, description = "The token, shown once", body = NewTokenResponse), WriteErrors))]
pub(crate) async fn create_token(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<NewTokenResponse>)> {
    let lifetime = match request.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(chrono::Duration::days(i64::from(days))),
        Some(days) => return Err(crate::error::ApiError::invalid("expires_in_days", format!("`{days}` is not between 1 and 3650"))),
    };
    let new = registry.create_token(&principal, request.user.as_deref(), &request.name, lifetime).await?;
    Ok((StatusCode::CREATED, Json(NewTokenResponse { token: new.secret, record: new.token.into() })))
}

/// Revokes a token (the caller's own; admins: anyone's). It signs no one in
/// from then on; its record stays.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "identity",
    params(("id" = String, Path, description = "The token's public id")),
    responses((status = 200, description = "The revoked token", body = TokenResponse), WriteErrors))]
pub(crate) async fn revoke_token(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(registry.revoke_token(&principal, &path.token_id()?).await?.into()))
}
