// Splitting a reasoning model's reply into its <think> block and its
// answer (docs/CHAT_TEMPLATES.md § Reasoning).

#include <gtest/gtest.h>

#include "engine/chat/reasoning.h"

namespace pagoda {
namespace {

TEST(Reasoning, AReplyWithoutABlockIsAllAnswer) {
    for (const bool complete : {false, true}) {
        const ReasoningSplit split = splitReasoning("Hello <b>there</b>.", complete);
        EXPECT_FALSE(split.hasBlock);
        EXPECT_FALSE(split.thinking);
        EXPECT_EQ(split.reasoning, "");
        EXPECT_EQ(split.answer, "Hello <b>there</b>.");
    }
}

TEST(Reasoning, AClosedBlockIsTheReasoningAndTheRestTheAnswer) {
    const ReasoningSplit split = splitReasoning("\n<think>\nFirst, 2 + 2.\nIt is 4.\n</think>\n\nIt is 4.\n", true);
    EXPECT_TRUE(split.hasBlock);
    EXPECT_FALSE(split.thinking);
    EXPECT_EQ(split.reasoning, "First, 2 + 2.\nIt is 4.");
    EXPECT_EQ(split.answer, "It is 4.\n");
}

// DeepSeek-R1's prompt opens the block: the reply may close one it never opened.
TEST(Reasoning, ABlockThePromptOpenedEndsAtTheClosingTag) {
    const ReasoningSplit split = splitReasoning("Okay, the user greets me.\n</think>\n\nHi!", true);
    EXPECT_TRUE(split.hasBlock);
    EXPECT_EQ(split.reasoning, "Okay, the user greets me.");
    EXPECT_EQ(split.answer, "Hi!");
}

TEST(Reasoning, AnOpenBlockIsStillThinking) {
    const ReasoningSplit split = splitReasoning("<think>\nLet me see", false);
    EXPECT_TRUE(split.hasBlock);
    EXPECT_TRUE(split.thinking);
    EXPECT_EQ(split.reasoning, "Let me see");
    EXPECT_EQ(split.answer, "");
    // A reply cut off inside the block (stopped, or out of tokens) stays so.
    EXPECT_TRUE(splitReasoning("<think>\nLet me see", true).thinking);
}

TEST(Reasoning, HalfAnOpeningTagIsNotShownWhileStreaming) {
    for (const std::string_view partial : {"<", "<th", " \n<think"}) {
        const ReasoningSplit streaming = splitReasoning(partial, false);
        EXPECT_TRUE(streaming.thinking) << partial;
        EXPECT_EQ(streaming.answer, "") << partial;
        // A finished reply that is only that is text.
        const ReasoningSplit finished = splitReasoning(partial, true);
        EXPECT_FALSE(finished.hasBlock) << partial;
        EXPECT_EQ(finished.answer, partial);
    }
    EXPECT_EQ(splitReasoning("<thing>", false).answer, "<thing>");
    EXPECT_EQ(splitReasoning("<b", false).answer, "<b");
}

TEST(Reasoning, TheTemplatesKeepTheTextAfterTheLastClosingTag) {
    EXPECT_EQ(afterReasoning("<think>a</think>b</think>\n\nc"), "\n\nc");
    EXPECT_EQ(afterReasoning("no block"), "no block");
    EXPECT_EQ(afterReasoning("<think>cut off"), "<think>cut off");
}

}  // namespace
}  // namespace pagoda
