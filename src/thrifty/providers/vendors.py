"""Every vendor thrifty knows, as data: which wire it speaks, where it lives, how it takes
its key, which environment variables configure it, and which OpenAI parameters it lacks.
Adding an OpenAI-compatible vendor is one entry here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Parameters outside the common core that many OpenAI-compatible servers reject.
_OPENAI_ONLY = frozenset(
    {"service_tier", "store", "metadata", "prediction", "modalities", "audio",
     "reasoning_effort", "web_search_options", "verbosity", "prompt_cache_key",
     "safety_identifier"}
)
_TO_MAX_TOKENS = MappingProxyType({"max_completion_tokens": "max_tokens"})


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    wire: str
    base_url: str
    key_env: tuple[str, ...] = ()
    base_url_env: tuple[str, ...] = ()
    auth: str = "bearer"
    needs_key: bool = True
    drop_params: frozenset[str] = frozenset()
    rename_params: Mapping[str, str] = field(default_factory=dict)
    catalog: str | None = None
    """Provider id in the price catalog (defaults to the vendor name)."""
    self_hosted: bool = False

    @property
    def catalog_provider(self) -> str:
        return self.catalog or self.name


VENDORS: dict[str, Vendor] = {
    v.name: v
    for v in (
        Vendor("openai", "openai", "https://api.openai.com/v1",
               key_env=("OPENAI_API_KEY",), base_url_env=("OPENAI_BASE_URL",)),
        Vendor("azure", "openai", "", key_env=("AZURE_OPENAI_API_KEY",),
               base_url_env=("AZURE_OPENAI_ENDPOINT",), auth="api-key", catalog="openai"),
        Vendor("deepseek", "openai", "https://api.deepseek.com/v1",
               key_env=("DEEPSEEK_API_KEY",), base_url_env=("DEEPSEEK_BASE_URL",),
               drop_params=_OPENAI_ONLY | {"seed", "n", "parallel_tool_calls"},
               rename_params=_TO_MAX_TOKENS),
        Vendor("mistral", "openai", "https://api.mistral.ai/v1",
               key_env=("MISTRAL_API_KEY",), base_url_env=("MISTRAL_BASE_URL",),
               drop_params=_OPENAI_ONLY | {"user", "logit_bias", "logprobs", "top_logprobs",
                                           "stream_options"},
               rename_params=MappingProxyType({**_TO_MAX_TOKENS, "seed": "random_seed"})),
        Vendor("together", "openai", "https://api.together.xyz/v1",
               key_env=("TOGETHER_API_KEY",), base_url_env=("TOGETHER_BASE_URL",),
               drop_params=_OPENAI_ONLY, rename_params=_TO_MAX_TOKENS),
        Vendor("fireworks", "openai", "https://api.fireworks.ai/inference/v1",
               key_env=("FIREWORKS_API_KEY",), base_url_env=("FIREWORKS_BASE_URL",),
               drop_params=_OPENAI_ONLY, rename_params=_TO_MAX_TOKENS),
        Vendor("groq", "openai", "https://api.groq.com/openai/v1",
               key_env=("GROQ_API_KEY",), base_url_env=("GROQ_BASE_URL",),
               drop_params=_OPENAI_ONLY | {"logit_bias", "logprobs", "top_logprobs"}),
        Vendor("openrouter", "openai", "https://openrouter.ai/api/v1",
               key_env=("OPENROUTER_API_KEY",), base_url_env=("OPENROUTER_BASE_URL",)),
        Vendor("xai", "openai", "https://api.x.ai/v1",
               key_env=("XAI_API_KEY",), base_url_env=("XAI_BASE_URL",),
               drop_params=frozenset({"service_tier", "store", "prediction", "audio"})),
        Vendor("vllm", "openai", "http://127.0.0.1:8000/v1", key_env=("VLLM_API_KEY",),
               base_url_env=("VLLM_BASE_URL",), needs_key=False, self_hosted=True,
               drop_params=_OPENAI_ONLY),
        Vendor("ollama", "openai", "http://127.0.0.1:11434/v1", base_url_env=("OLLAMA_BASE_URL",),
               auth="none", needs_key=False, self_hosted=True, drop_params=_OPENAI_ONLY,
               rename_params=_TO_MAX_TOKENS),
        Vendor("llamacpp", "openai", "http://127.0.0.1:8080/v1",
               key_env=("LLAMACPP_API_KEY",), base_url_env=("LLAMACPP_BASE_URL",),
               needs_key=False, self_hosted=True, drop_params=_OPENAI_ONLY,
               rename_params=_TO_MAX_TOKENS),
        Vendor("anthropic", "anthropic", "https://api.anthropic.com",
               key_env=("ANTHROPIC_API_KEY",), base_url_env=("ANTHROPIC_BASE_URL",),
               auth="x-api-key"),
        Vendor("gemini", "gemini", "https://generativelanguage.googleapis.com",
               key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
               base_url_env=("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"),
               auth="x-goog-api-key"),
    )
}
