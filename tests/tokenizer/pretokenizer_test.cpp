// Pre-tokenizer splits, with the expected words worked out by hand from the
// published regexes (leftmost alternative that matches wins; the text
// between matches is a word of its own; regexes apply in turn to each word).

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "engine/tokenizer/pretokenizer.h"

namespace pagoda {
namespace {

using Words = std::vector<std::string>;

Words split(std::string_view name, std::string_view text) {
    const auto preTokenizer = PreTokenizer::create(name);
    EXPECT_TRUE(preTokenizer.has_value()) << preTokenizer.error().message;
    Words words;
    for (const std::string_view word : preTokenizer->split(text)) {
        words.emplace_back(word);
    }
    return words;
}

TEST(PreTokenizer, Llama3GroupsDigitsInThrees) {
    EXPECT_EQ(split("llama-bpe", "1234567"), (Words{"123", "456", "7"}));
    EXPECT_EQ(split("llama-bpe", "I'm 12345 years"), (Words{"I", "'m", " ", "123", "45", " years"}));
    EXPECT_EQ(split("llama-bpe", "3.14"), (Words{"3", ".", "14"}));
}

TEST(PreTokenizer, Llama3ContractionsIgnoreCase) {
    EXPECT_EQ(split("llama-bpe", "HE'S we'll You'RE"), (Words{"HE", "'S", " we", "'ll", " You", "'RE"}));
    // Not a listed contraction: the apostrophe is a non-letter prefix of the word.
    EXPECT_EQ(split("llama-bpe", "o'clock"), (Words{"o", "'clock"}));
}

TEST(PreTokenizer, Llama3Whitespace) {
    // A run of spaces leaves its last space to the next word.
    EXPECT_EQ(split("llama-bpe", "a   b"), (Words{"a", "  ", " b"}));
    EXPECT_EQ(split("llama-bpe", "a\n\nb"), (Words{"a", "\n\n", "b"}));
    EXPECT_EQ(split("llama-bpe", "  \n x"), (Words{"  \n", " x"}));
    EXPECT_EQ(split("llama-bpe", "hi!\n\nyo"), (Words{"hi", "!\n\n", "yo"}));
    EXPECT_EQ(split("llama-bpe", "end  "), (Words{"end", "  "}));
    EXPECT_EQ(split("llama-bpe", "\tif"), (Words{"\tif"}));
    // A word takes at most one non-letter before its letters: " (y" is " (" then "y".
    EXPECT_EQ(split("llama-bpe", "$x (y)"), (Words{"$x", " (", "y", ")"}));
}

TEST(PreTokenizer, Llama3Unicode) {
    // "é" is a letter, "½" a number (No), the emoji neither.
    EXPECT_EQ(split("llama-bpe", "café ½ \xF0\x9F\xA6\x99!"),
              (Words{"café", " ", "½", " \xF0\x9F\xA6\x99!"}));
}

TEST(PreTokenizer, Qwen2SplitsEveryDigit) {
    EXPECT_EQ(split("qwen2", "12345"), (Words{"1", "2", "3", "4", "5"}));
    EXPECT_EQ(split("qwen2", "I'M 42"), (Words{"I", "'M", " ", "4", "2"}));
    EXPECT_EQ(split("qwen2", "a   b\n\n"), (Words{"a", "  ", " b", "\n\n"}));
}

TEST(PreTokenizer, TekkenSplitsAtCaseChangesAndEveryDigit) {
    EXPECT_EQ(split("tekken", "HelloWorld ABCdef"), (Words{"Hello", "World", " ABCdef"}));
    // No contractions: the apostrophe starts a word of its own.
    EXPECT_EQ(split("tekken", "I'M 42"), (Words{"I", "'M", " ", "4", "2"}));
    // A punctuation run takes the newlines and slashes after it.
    EXPECT_EQ(split("tekken", "hi!\n/usr"), (Words{"hi", "!\n/", "usr"}));
    EXPECT_EQ(split("tekken", "a   b\n\n"), (Words{"a", "  ", " b", "\n\n"}));
}

TEST(PreTokenizer, O200kKeepsContractionsOnTheirWord) {
    EXPECT_EQ(split("gpt-4o", "I'M 12345 years"), (Words{"I'M", " ", "123", "45", " years"}));
    EXPECT_EQ(split("gpt-4o", "HelloWorld we'll"), (Words{"Hello", "World", " we'll"}));
    // Capitals then lower case is one word; lower case then capitals is two.
    EXPECT_EQ(split("llama4", "ABCdef abcDEF"), (Words{"ABCdef", " abc", "DEF"}));
    EXPECT_EQ(split("gpt-4o", "x.\n/y"), (Words{"x", ".\n/", "y"}));
}

TEST(PreTokenizer, Gpt2IsCaseSensitiveAndKeepsNumbersWhole) {
    EXPECT_EQ(split("gpt-2", "it's IT'S"), (Words{"it", "'s", " IT", "'", "S"}));
    EXPECT_EQ(split("gpt-2", "Hello  world 123456"), (Words{"Hello", " ", " world", " 123456"}));
    EXPECT_EQ(split("gpt-2", "a\n\nb"), (Words{"a", "\n", "\n", "b"}));
}

TEST(PreTokenizer, StarcoderIsolatesDigits) {
    EXPECT_EQ(split("starcoder", "abc123 42"), (Words{"abc", "1", "2", "3", " ", "4", "2"}));
}

TEST(PreTokenizer, Falcon) {
    // The digit triples split " 1234", which the GPT-2 regex left whole.
    EXPECT_EQ(split("falcon", "a+b 1234"), (Words{"a", "+", "b", " ", "123", "4"}));
}

TEST(PreTokenizer, DeepSeek) {
    EXPECT_EQ(split("deepseek-llm", "Hello\xE4\xB8\x96\xE7\x95\x8C" "123"),
              (Words{"Hello", "\xE4\xB8\x96\xE7\x95\x8C", "123"}));
    // "=" is a math symbol, not punctuation; digits go one by one.
    EXPECT_EQ(split("deepseek-coder", "x = 10"), (Words{"x", " = ", "1", "0"}));
}

TEST(PreTokenizer, UnknownNamesFallBackToDefault) {
    const auto unknown = PreTokenizer::create("no-such-pre-tokenizer");
    ASSERT_TRUE(unknown.has_value()) << unknown.error().message;
    EXPECT_EQ(unknown->name(), "default");
    const auto missing = PreTokenizer::create("");
    ASSERT_TRUE(missing.has_value()) << missing.error().message;
    EXPECT_EQ(missing->name(), "default");
    EXPECT_EQ(split("", "a+b 1234"), (Words{"a", "+", "b", " ", "123", "4"}));
}

TEST(PreTokenizer, AliasesAndFlags) {
    const auto llama3 = PreTokenizer::create("llama3");
    ASSERT_TRUE(llama3.has_value());
    EXPECT_EQ(llama3->name(), "llama3");
    EXPECT_TRUE(llama3->ignoreMerges());
    EXPECT_FALSE(PreTokenizer::create("gpt-2")->ignoreMerges());
    EXPECT_TRUE(preTokenizerAddsBos("llama-bpe"));
    EXPECT_FALSE(preTokenizerAddsBos("qwen2"));
    // Tekken as llama.cpp takes it: whole words looked up first, BOS added.
    EXPECT_TRUE(PreTokenizer::create("tekken")->ignoreMerges());
    EXPECT_TRUE(preTokenizerAddsBos("tekken"));
    EXPECT_FALSE(PreTokenizer::create("gpt-4o")->ignoreMerges());
    EXPECT_FALSE(preTokenizerAddsBos("gpt-4o"));
    EXPECT_FALSE(preTokenizerAddsBos("no-such-pre-tokenizer"));
}

TEST(PreTokenizer, InvalidUtf8StaysBetweenWords) {
    EXPECT_EQ(split("gpt-2", "ab\xFF" "cd \xC3"), (Words{"ab", "\xFF", "cd", " ", "\xC3"}));
    EXPECT_TRUE(split("llama-bpe", "").empty());
}

TEST(PreTokenizer, WordsCoverLongInputs) {
    const std::string text = std::string(100000, ' ') + "x" + std::string(100000, '7') + "\n";
    for (const std::string_view name :
         {"llama-bpe", "qwen2", "tekken", "gpt-4o", "gpt-2", "starcoder", "deepseek-llm", "default"}) {
        std::string joined;
        for (const std::string& word : split(name, text)) {
            joined += word;
        }
        EXPECT_EQ(joined, text) << name;
    }
}

}  // namespace
}  // namespace pagoda
