"""Attribute names of recorded spans: OpenTelemetry's GenAI semantic conventions where they
have a name (``opentelemetry-semantic-conventions``' ``gen_ai`` module), ``orchestrator.*``
for the rest. One table, read by the recorder, the store and the OTLP export alike."""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

OPERATION = gen_ai.GEN_AI_OPERATION_NAME
PROVIDER = gen_ai.GEN_AI_PROVIDER_NAME
REQUEST_MODEL = gen_ai.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL = gen_ai.GEN_AI_RESPONSE_MODEL
TEMPERATURE = gen_ai.GEN_AI_REQUEST_TEMPERATURE
TOP_P = gen_ai.GEN_AI_REQUEST_TOP_P
TOP_K = gen_ai.GEN_AI_REQUEST_TOP_K
MAX_TOKENS = gen_ai.GEN_AI_REQUEST_MAX_TOKENS
SEED = gen_ai.GEN_AI_REQUEST_SEED
STOP = gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES
FINISH_REASONS = gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
INPUT_TOKENS = gen_ai.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS = gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
CACHE_READ = gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
TIME_TO_FIRST_TOKEN = gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
INPUT_MESSAGES = gen_ai.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES = gen_ai.GEN_AI_OUTPUT_MESSAGES
CONVERSATION = gen_ai.GEN_AI_CONVERSATION_ID
TOOL_NAME = gen_ai.GEN_AI_TOOL_NAME
TOOL_ARGUMENTS = gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_RESULT = gen_ai.GEN_AI_TOOL_CALL_RESULT
AGENT_NAME = gen_ai.GEN_AI_AGENT_NAME
QUERY = gen_ai.GEN_AI_RETRIEVAL_QUERY_TEXT
DOCUMENTS = gen_ai.GEN_AI_RETRIEVAL_DOCUMENTS
ERROR_TYPE = "error.type"

#: ``gen_ai.operation.name`` values (the convention's ``GenAiOperationNameValues``).
CHAT, COMPLETION, TOOL, AGENT, RETRIEVAL = (
    "chat",
    "text_completion",
    "execute_tool",
    "invoke_agent",
    "retrieval",
)

KIND = "orchestrator.kind"
"""run | chain | llm | retriever | tool | agent | agent_step | eval_item | prompt | parser"""
COMPONENT = "orchestrator.component"
INPUT = "orchestrator.input"
OUTPUT = "orchestrator.output"
HIDDEN = "orchestrator.hidden"
COMMAND = "orchestrator.run.command"
PIPELINE = "orchestrator.run.pipeline"
RUN_MODEL = "orchestrator.run.model"
ERROR_MESSAGE = "orchestrator.error.message"
ERROR_FIX = "orchestrator.error.fix"
MODEL_PATH = "orchestrator.model.path"
MODEL_SIZE = "orchestrator.model.size"
MODEL_MTIME = "orchestrator.model.mtime_ns"
MODEL_SHA256 = "orchestrator.model.sha256"
GRAMMAR = "orchestrator.request.grammar"
SCHEMA = "orchestrator.request.schema"
TOOLS = "orchestrator.request.tools"
QUEUE_WAIT = "orchestrator.engine.queue_wait_s"
SLOT = "orchestrator.engine.slot"
DOC_IDS = "orchestrator.retrieval.doc_ids"
SCORES = "orchestrator.retrieval.scores"
RETRIEVER = "orchestrator.retrieval.retriever"

#: Run-level kinds: a span of one of these with no parent is a run's root.
RUN = "run"
