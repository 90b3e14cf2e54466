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

PROMPTS: dict[str, str] = {
    "title": TITLE,
    "character": CHARACTER,
    "story": STORY,
    "conversation": CONVERSATION,
    "summary": SUMMARY,
    "rag": RAG,
    "react": REACT,
}


def get_prompt(name: str) -> PromptTemplate:
    """The named prompt as a LangChain ``PromptTemplate`` whose values are defused
    (:class:`orchestrator.prompts.templates.PromptTemplate`)."""
    try:
        return PromptTemplate.from_template(PROMPTS[name])
    except KeyError:
        raise KeyError(f"unknown prompt {name!r}; choose one of {sorted(PROMPTS)}") from None
