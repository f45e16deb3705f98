"""Request and response models of the people routes (`/v1/admin/...`, `/v1/auth/...`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class UserIn(BaseModel):
    """A person (default) or a service account (`kind: service`, optionally owned by a person)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="显示名（中文姓名即可），例如 张敏", min_length=1, max_length=100)
    roles: list[str] = Field(
        description="角色：ingest, editor, approver, compliance, auditor, admin", min_length=1
    )
    username: str | None = Field(default=None, description="登录名（唯一）；不给则用 name")
    password: SecretStr | None = Field(default=None, description="初始密码（至少 10 个字符）；从不返回")
    kind: Literal["user", "service"] = "user"
    owner_id: str | None = Field(default=None, description="服务账号的归属人（user_id）")


class UserPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = Field(default=None, min_length=1)
    disabled: bool | None = None


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = Field(default=None, min_length=1, description="默认：归属人的全部角色")
    label: str = Field(default="", max_length=200, description="用途，例如 工单系统正式环境")


class UserOut(BaseModel):
    user_id: str
    kind: str
    name: str
    username: str | None
    roles: list[str]
    disabled: bool
    status: str
    owner_id: str | None
    password: bool
    totp: bool
    created_at: str
    updated_at: str


class UserListOut(BaseModel):
    users: list[UserOut]


class KeyOut(BaseModel):
    key_id: str
    roles: list[str]
    label: str
    status: str = Field(description="active / expiring（已轮换，重叠期内仍可用）/ expired / revoked")
    created_at: str
    revoked_at: str | None
    expires_at: str | None = Field(description="轮换后旧密钥的失效时间（重叠期结束）")
    replaced_by: str | None = Field(description="轮换出的新密钥 id")
    user_id: str | None
    owner_kind: str | None
    owner_name: str | None


class KeyListOut(BaseModel):
    keys: list[KeyOut]


class CreatedKeyOut(BaseModel):
    key_id: str
    key: str = Field(description="密钥本身，只显示这一次")
    roles: list[str]
    user_id: str


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="旧密钥在重叠期内继续有效的秒数（默认 1 天，0 为立即失效，最多 30 天）",
    )


class RotatedKeyOut(BaseModel):
    key_id: str = Field(description="新密钥 id")
    key: str = Field(description="新密钥本身，只显示这一次")
    roles: list[str]
    user_id: str
    replaces: KeyOut = Field(description="旧密钥：重叠期结束（expires_at）前仍可用")


BODY_MODELS: list[type[BaseModel]] = [UserIn, UserPatchIn, KeyIn, RotateIn]
