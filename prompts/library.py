"""A small library of named prompts (the ones the book's chapters 7 and 8 use).

Templates are plain text with ``{variables}``; chat models wrap them in their own chat format,
so the same prompt works for Phi-3, SmolLM2 (ChatML) or Llama 3.
"""

from __future__ import annotations

from orchestrator.prompts.templates import PromptTemplate

TITLE = "Create a title for a story about {summary}. Only return the title."

CHARACTER = (
    "Describe the main character of a story about {summary} with the title {title}. "
    "Use only two sentences."
)

STORY = (
    "Create a story about {summary} with the title {title}. The main character is: "
    "{character}. Only return the story and it cannot be longer than one paragraph."
)

CONVERSATION = "Current conversation:\n{chat_history}\n\n{input_prompt}"

SUMMARY = (
    "Summarize the conversations and update with the new lines.\n\n"
    "Current summary:\n{summary}\n\n"
    "new lines of conversation:\n{new_lines}\n\n"
    "New summary:"
)

RAG = (
    "Answer the question using only the numbered sources below. Cite the sources you use "
    "with their numbers in square brackets, like [1]. If the sources do not contain the "
    "answer, say that you do not know.\n\n"
    "Sources:\n{context}\n\n"
    "Question: {question}\n"
    "Answer:"
)

#: Query generation for the RAG strategies (``orchestrator.chains.strategies``). The JSON
#: replies are decoded under a grammar built from a schema, so the shape always parses; the
#: prompt only says what to put in it. No worked example: SmolLM2-135M copied the example's
#: query instead of writing one for the question (tried on Cranfield queries).
QUERY_REWRITE = "Rewrite the question as a search query of keywords.\n\nQuestion: {question}"

MULTI_QUERY = (
    "Question: {question}\n\n"
    "Write {n} search queries that use other words for this question."
)

HYDE = (
    "Write a short passage, as a technical document would, that answers the question.\n\n"
    "Question: {question}\n"
    "Passage:"
)

FOLLOW_UP = (
    "Question: {question}\n\n"
    "Sources found so far:\n{context}\n\n"
    "Is a fact needed to answer the question missing from these sources? If it is, write a "
    "search query for the missing fact. If the sources are enough, write DONE."
)

ROUTE = (
    "Choose the knowledge bases to search for the question.\n\n"
    "Knowledge bases:\n{routes}\n\n"
    "Question: {question}\n"
    'Reply with the names, like {{"indexes": ["name"]}}:'
)

REACT = (
    "Answer the following questions as best you can. You have access to the following tools:\n\n"
    "{tools}\n\n"
    "Use the following format:\n\n"
    "Question: the input question you must answer\n"
    "Thought: you should always think about what to do\n"
    "Action: the action to take, should be one of [{tool_names}]\n"
    "Action Input: the input to the action\n"
    "Observation: the result of the action\n"
    "... (this Thought/Action/Action Input/Observation can repeat N times)\n"
    "Thought: I now know the final answer\n"
    "Final Answer: the final answer to the original input question\n\n"
    "Begin!\n\n"
    "Question: {input}\n"
    "Thought:{agent_scratchpad}"
)

#: Prompting techniques (``orchestrator.chains.techniques``). Few-shot examples for these
#: prompts are stored in ``orchestrator.prompts.few_shot.EXAMPLES``.
PLAIN = "{question}"

QA_EXAMPLE = "Question: {question}\nAnswer: {answer}"

FEW_SHOT_PREFIX = "Answer each question with a short answer, as in the examples."

FEW_SHOT_SUFFIX = "Question: {question}\nAnswer:"

#: Zero-shot chain-of-thought (Kojima et al. 2022, "Let's think step by step").
COT = "Question: {question}\n\nLet's think step by step."

#: The grammar-constrained last step of chain-of-thought: the answer alone, given the reasoning.
COT_ANSWER = (
    "Question: {question}\n\n"
    "Reasoning:\n{reasoning}\n\n"
    "What is the final answer to the question? Reply with the answer only."
)

TOT_PROPOSE = (
    "Question: {question}\n\n"
    "Steps so far:\n{steps}\n\n"
    "Write the next step towards the answer, in one short sentence."
)

TOT_RATE = (
    "Question: {question}\n\n"
    "Steps so far:\n{steps}\n\n"
    "Do these steps lead to the correct answer? Reply with {scale}."
)

PROMPTS: dict[str, str] = {
    "plain": PLAIN,
    "qa_example": QA_EXAMPLE,
    "few_shot_prefix": FEW_SHOT_PREFIX,
    "few_shot_suffix": FEW_SHOT_SUFFIX,
    "cot": COT,
    "cot_answer": COT_ANSWER,
    "tot_propose": TOT_PROPOSE,
    "tot_rate": TOT_RATE,
    "title": TITLE,
    "character": CHARACTER,
    "story": STORY,
    "conversation": CONVERSATION,
    "summary": SUMMARY,
    "rag": RAG,
    "react": REACT,
    "query_rewrite": QUERY_REWRITE,
    "multi_query": MULTI_QUERY,
    "hyde": HYDE,
    "follow_up": FOLLOW_UP,
    "route": ROUTE,
}


def get_prompt(name: str) -> PromptTemplate:
    """The named prompt as a LangChain ``PromptTemplate`` whose values are defused
    (:class:`orchestrator.prompts.templates.PromptTemplate`)."""
    try:
        return PromptTemplate.from_template(PROMPTS[name])
    except KeyError:
        raise KeyError(f"unknown prompt {name!r}; choose one of {sorted(PROMPTS)}") from None
