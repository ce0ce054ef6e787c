// Chat template families: detection from the published templates and the
// exact prompt each renders. Expected strings are written from the formats
// in docs/CHAT_TEMPLATES.md (section named in each test), which quotes the
// published Jinja templates.

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/chat/chat_template.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/tokenizer.h"

namespace pagoda {
namespace {

using ::testing::ElementsAre;

// Published templates (tests/chat/templates; its README.md says where each
// is from).
std::string publishedTemplate(const char* name) {
    std::ifstream in(std::filesystem::path(PAGODA_CHAT_TEMPLATES_DIR) / (std::string(name) + ".jinja"),
                     std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

const std::string kLlama2Source = publishedTemplate("llama2");
const std::string kLlama3Source = publishedTemplate("llama3");
const std::string kLlama31Source = publishedTemplate("llama31-excerpt");
const std::string kLlama32Source = publishedTemplate("llama32");
const std::string kQwen2Source = publishedTemplate("qwen2");
const std::string kMistralSource = publishedTemplate("mistral");
const std::string kZephyrSource = publishedTemplate("zephyr");
const std::string kPhi3Source = publishedTemplate("phi3");
const std::string kMistralNemoSource = publishedTemplate("mistral-nemo");
const std::string kMistral03Source = publishedTemplate("mistral-v03-excerpt");
const std::string kMistralSmall3Source = publishedTemplate("mistral-small3-excerpt");
const std::string kPhi4Source = publishedTemplate("phi4");
const std::string kPhi4MiniSource = publishedTemplate("phi4-mini");
const std::string kGemmaSource = publishedTemplate("gemma3");
const std::string kDeepSeekR1Source = publishedTemplate("deepseek-r1");
const std::string kDeepSeekR1FirstSource = publishedTemplate("deepseek-r1-first-excerpt");
const std::string kQwen3Source = publishedTemplate("qwen3");
const std::string kGemma2Source = publishedTemplate("gemma2");
const std::string kPhi35Source = publishedTemplate("phi35");
const std::string kQwqSource = publishedTemplate("qwq");

const std::vector<ChatMessage> kConversation = {
    {ChatRole::System, "You are terse."},
    {ChatRole::User, "Hi there!"},
    {ChatRole::Assistant, "Hello! How can I help?"},
    {ChatRole::User, "Tell me a joke."},
};

std::string render(const ChatTemplate& chatTemplate, const std::vector<ChatMessage>& messages,
                   bool addGenerationPrompt = true) {
    const Result<std::string> prompt = chatTemplate.render(messages, addGenerationPrompt);
    EXPECT_TRUE(prompt.has_value()) << prompt.error().message;
    return prompt.value_or("");
}

ChatTemplate family(ChatFamily chatFamily) { return ChatTemplate(chatFamily, "<s>", "</s>"); }

// docs/CHAT_TEMPLATES.md § ChatML
TEST(ChatTemplate, RendersChatMl) {
    EXPECT_EQ(render(family(ChatFamily::ChatMl), kConversation),
              "<|im_start|>system\nYou are terse.<|im_end|>\n"
              "<|im_start|>user\nHi there!<|im_end|>\n"
              "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
              "<|im_start|>user\nTell me a joke.<|im_end|>\n"
              "<|im_start|>assistant\n");
    EXPECT_EQ(render(family(ChatFamily::ChatMl), {{ChatRole::User, " hi "}}, false),
              "<|im_start|>user\n hi <|im_end|>\n");
}

// docs/CHAT_TEMPLATES.md § Llama 2
TEST(ChatTemplate, RendersLlama2) {
    EXPECT_EQ(render(family(ChatFamily::Llama2), kConversation),
              "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there! [/INST] Hello! How can I help? </s>"
              "<s>[INST] Tell me a joke. [/INST]");
    EXPECT_EQ(render(family(ChatFamily::Llama2), {{ChatRole::User, "  hi\n"}, {ChatRole::Assistant, " yo "}}),
              "[INST] hi [/INST] yo </s>");
}

// docs/CHAT_TEMPLATES.md § Llama 3
TEST(ChatTemplate, RendersLlama3) {
    EXPECT_EQ(render(ChatTemplate(ChatFamily::Llama3, "<|begin_of_text|>", "<|eot_id|>"), kConversation),
              "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(render(family(ChatFamily::Llama3), {{ChatRole::User, "\n hi \n"}}, false),
              "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
}

// docs/CHAT_TEMPLATES.md § Mistral
TEST(ChatTemplate, RendersMistral) {
    EXPECT_EQ(render(family(ChatFamily::Mistral), kConversation),
              "[INST] You are terse.\n\nHi there! [/INST]Hello! How can I help?</s>[INST] Tell me a joke. [/INST]");
    EXPECT_EQ(render(family(ChatFamily::Mistral), {{ChatRole::User, " hi "}}), "[INST]  hi  [/INST]");
}

// docs/CHAT_TEMPLATES.md § Mistral (v3-tekken: Nemo)
TEST(ChatTemplate, RendersMistralV3TekkenWithTheSystemTextInTheLastUserTurn) {
    const ChatTemplate nemo = ChatTemplate::detect(kMistralNemoSource, "<s>", "</s>");
    EXPECT_EQ(nemo.family(), ChatFamily::MistralV3Tekken);
    EXPECT_EQ(render(nemo, kConversation),
              "[INST]Hi there![/INST]Hello! How can I help?</s>[INST]You are terse.\n\nTell me a joke.[/INST]");
    // The last message an assistant turn: the system text is nowhere.
    const std::vector<ChatMessage> answered(kConversation.begin(), kConversation.begin() + 3);
    EXPECT_EQ(render(nemo, answered, false), "[INST]Hi there![/INST]Hello! How can I help?</s>");
    EXPECT_THAT(nemo.stopTexts(), ElementsAre("</s>"));
    EXPECT_FALSE(nemo.render(std::vector<ChatMessage>{{ChatRole::User, "a"}, {ChatRole::User, "b"}}, true));
}

// docs/CHAT_TEMPLATES.md § Mistral (v3: 7B v0.3): a space after [INST], a
// space before the trimmed reply, none before [/INST].
TEST(ChatTemplate, RendersMistralV3WithItsSpaces) {
    const ChatTemplate v03 = ChatTemplate::detect(kMistral03Source, "<s>", "</s>");
    EXPECT_EQ(v03.family(), ChatFamily::MistralV3);
    EXPECT_EQ(chatFamilyName(v03.family()), "mistral-v3");
    EXPECT_EQ(render(v03, kConversation),
              "[INST] Hi there![/INST] Hello! How can I help?</s>[INST] You are terse.\n\nTell me a joke.[/INST]");
    EXPECT_EQ(render(v03, {{ChatRole::User, "a"}, {ChatRole::Assistant, "\n b \n"}, {ChatRole::User, "c"}}),
              "[INST] a[/INST] b</s>[INST] c[/INST]");
    EXPECT_THAT(v03.stopTexts(), ElementsAre("</s>"));
}

// docs/CHAT_TEMPLATES.md § Mistral (v7: Small 3)
TEST(ChatTemplate, RendersMistralV7WithItsDefaultSystemPrompt) {
    const ChatTemplate small = ChatTemplate::detect(kMistralSmall3Source, "<s>", "</s>");
    EXPECT_EQ(small.family(), ChatFamily::MistralV7);
    EXPECT_TRUE(small.defaultSystem().starts_with("You are Mistral Small 3, a Large Language Model"));
    EXPECT_TRUE(small.defaultSystem().ends_with("=> 'Where do you travel from?')"));
    EXPECT_NE(small.defaultSystem().find("2023-10-01.\n\nWhen you're not sure"), std::string::npos);
    EXPECT_EQ(render(small, kConversation),
              "[SYSTEM_PROMPT]You are terse.[/SYSTEM_PROMPT][INST]Hi there![/INST]Hello! How can I help?</s>"
              "[INST]Tell me a joke.[/INST]");
    EXPECT_EQ(render(small, {{ChatRole::User, "Hi"}}),
              "[SYSTEM_PROMPT]" + small.defaultSystem() + "[/SYSTEM_PROMPT][INST]Hi[/INST]");
    EXPECT_THAT(small.stopTexts(), ElementsAre("</s>"));
    // Mistral Small 3.1 builds its default with the date: none is taken.
    const ChatTemplate dated = ChatTemplate::detect(
        "{%- set default_system_message = \"The current date is \" + today + \".\" %}{{- '[SYSTEM_PROMPT]' + "
        "system_message + '[/SYSTEM_PROMPT]' }}{{- '[INST]' + message['content'] + '[/INST]' }}",
        "<s>", "</s>");
    EXPECT_EQ(dated.family(), ChatFamily::MistralV7);
    EXPECT_EQ(dated.defaultSystem(), "");
    EXPECT_EQ(render(dated, {{ChatRole::User, "Hi"}}), "[INST]Hi[/INST]");
}

// docs/CHAT_TEMPLATES.md § Llama 3 (3.1 and later)
TEST(ChatTemplate, Llama31OpensWithItsKnowledgeCutoffAndDate) {
    const ChatTemplate llama = ChatTemplate::detect(kLlama31Source, "<|begin_of_text|>", "<|eot_id|>");
    EXPECT_EQ(llama.family(), ChatFamily::Llama3);
    EXPECT_EQ(render(llama, kConversation),
              "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
              "Today Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    // Without a system message the system turn holds the dates alone.
    EXPECT_EQ(render(llama, {{ChatRole::User, "Hi"}}),
              "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
              "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");

    // Llama 3.2's writes the day's date (strftime_now("%d %b %Y")).
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char date[32];
    date[std::strftime(date, sizeof date, "%d %b %Y", &local)] = '\0';
    EXPECT_EQ(render(ChatTemplate::detect(kLlama32Source, "<|begin_of_text|>", "<|eot_id|>"), {{ChatRole::User, "Hi"}}),
              std::string("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                          "Today Date: ") +
                  date + "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// docs/CHAT_TEMPLATES.md § Zephyr
TEST(ChatTemplate, RendersZephyr) {
    EXPECT_EQ(render(family(ChatFamily::Zephyr), kConversation),
              "<|system|>\nYou are terse.</s>\n"
              "<|user|>\nHi there!</s>\n"
              "<|assistant|>\nHello! How can I help?</s>\n"
              "<|user|>\nTell me a joke.</s>\n"
              "<|assistant|>\n");
    EXPECT_EQ(render(family(ChatFamily::Zephyr), {}), "");
}

// docs/CHAT_TEMPLATES.md § Phi-3
TEST(ChatTemplate, RendersPhi3) {
    const ChatTemplate phi3(ChatFamily::Phi3, "<s>", "<|endoftext|>");
    EXPECT_EQ(render(phi3, kConversation),
              "<|system|>\nYou are terse.<|end|>\n"
              "<|user|>\nHi there!<|end|>\n"
              "<|assistant|>\nHello! How can I help?<|end|>\n"
              "<|user|>\nTell me a joke.<|end|>\n"
              "<|assistant|>\n");
    EXPECT_EQ(render(phi3, {{ChatRole::User, "hi"}}, false), "<|user|>\nhi<|end|>\n<|endoftext|>");
}

// docs/CHAT_TEMPLATES.md § Phi-4
TEST(ChatTemplate, RendersPhi4) {
    const ChatTemplate phi4 = ChatTemplate::detect(kPhi4Source, "<|endoftext|>", "<|im_end|>");
    EXPECT_EQ(phi4.family(), ChatFamily::Phi4);
    EXPECT_EQ(render(phi4, kConversation),
              "<|im_start|>system<|im_sep|>You are terse.<|im_end|>"
              "<|im_start|>user<|im_sep|>Hi there!<|im_end|>"
              "<|im_start|>assistant<|im_sep|>Hello! How can I help?<|im_end|>"
              "<|im_start|>user<|im_sep|>Tell me a joke.<|im_end|>"
              "<|im_start|>assistant<|im_sep|>");
    EXPECT_EQ(render(phi4, {{ChatRole::User, "hi"}}, false), "<|im_start|>user<|im_sep|>hi<|im_end|>");
    EXPECT_THAT(phi4.stopTexts(), ElementsAre("<|im_end|>"));
}

// docs/CHAT_TEMPLATES.md § Phi-3 (Phi-4-mini)
TEST(ChatTemplate, RendersPhi4MiniWithoutNewlines) {
    const ChatTemplate mini = ChatTemplate::detect(kPhi4MiniSource, "<|endoftext|>", "<|endoftext|>");
    EXPECT_EQ(mini.family(), ChatFamily::Phi4Mini);
    EXPECT_EQ(render(mini, kConversation),
              "<|system|>You are terse.<|end|><|user|>Hi there!<|end|><|assistant|>Hello! How can I help?<|end|>"
              "<|user|>Tell me a joke.<|end|><|assistant|>");
    EXPECT_EQ(render(mini, {{ChatRole::User, "hi"}}, false), "<|user|>hi<|end|><|endoftext|>");
    EXPECT_THAT(mini.stopTexts(), ElementsAre("<|end|>", "<|endoftext|>"));
}

// docs/CHAT_TEMPLATES.md § Gemma
TEST(ChatTemplate, RendersGemmaWithTheSystemMessageInTheFirstUserTurn) {
    const ChatTemplate gemma(ChatFamily::Gemma, "<bos>", "<eos>");
    EXPECT_EQ(render(gemma, kConversation),
              "<start_of_turn>user\nYou are terse.\n\nHi there!<end_of_turn>\n"
              "<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
              "<start_of_turn>user\nTell me a joke.<end_of_turn>\n"
              "<start_of_turn>model\n");
    EXPECT_EQ(render(gemma, {{ChatRole::User, " hi\n"}}, false), "<start_of_turn>user\nhi<end_of_turn>\n");
}

TEST(ChatTemplate, FamiliesWithoutFreeRolesRejectBrokenAlternation) {
    const std::vector<ChatMessage> twoUsers = {{ChatRole::User, "a"}, {ChatRole::User, "b"}};
    for (const ChatFamily chatFamily : {ChatFamily::Llama2, ChatFamily::Mistral, ChatFamily::Gemma}) {
        EXPECT_FALSE(family(chatFamily).render(twoUsers, true).has_value()) << chatFamilyName(chatFamily);
    }
    const auto late = family(ChatFamily::Gemma).render(
        std::vector<ChatMessage>{{ChatRole::User, "a"}, {ChatRole::System, "b"}}, true);
    ASSERT_FALSE(late.has_value());
    EXPECT_EQ(late.error().message,
              "gemma chat template: message 1 is a system turn where a assistant turn must be (after one optional "
              "system message, turns alternate user/assistant from a user turn)");
    const auto assistantFirst =
        family(ChatFamily::Llama2).render(std::vector<ChatMessage>{{ChatRole::Assistant, "a"}}, true);
    EXPECT_FALSE(assistantFirst.has_value());
    // Families whose templates take any order render it.
    for (const ChatFamily chatFamily :
         {ChatFamily::ChatMl, ChatFamily::Llama3, ChatFamily::Zephyr, ChatFamily::Phi3, ChatFamily::Phi4}) {
        EXPECT_TRUE(family(chatFamily).render(twoUsers, true).has_value()) << chatFamilyName(chatFamily);
    }
}

TEST(ChatTemplate, DetectsPublishedTemplates) {
    const std::vector<std::pair<std::string_view, ChatFamily>> cases = {
        {kLlama2Source, ChatFamily::Llama2}, {kLlama3Source, ChatFamily::Llama3},
        {kQwen2Source, ChatFamily::ChatMl},  {kMistralSource, ChatFamily::Mistral},
        {kZephyrSource, ChatFamily::Zephyr}, {kPhi3Source, ChatFamily::Phi3},
        {kGemmaSource, ChatFamily::Gemma},   {kDeepSeekR1Source, ChatFamily::DeepSeek},
        {kDeepSeekR1FirstSource, ChatFamily::DeepSeek}, {kQwen3Source, ChatFamily::ChatMl},
        {kQwqSource, ChatFamily::ChatMl},   {kPhi4Source, ChatFamily::Phi4},
        {kPhi4MiniSource, ChatFamily::Phi4Mini}, {kMistralNemoSource, ChatFamily::MistralV3Tekken},
        {kMistral03Source, ChatFamily::MistralV3}, {kGemma2Source, ChatFamily::Gemma},
        {kPhi35Source, ChatFamily::Phi3}, {kLlama32Source, ChatFamily::Llama3},
        {kMistralSmall3Source, ChatFamily::MistralV7}, {kLlama31Source, ChatFamily::Llama3},
    };
    for (const auto& [source, expected] : cases) {
        const ChatTemplate detected = ChatTemplate::detect(source, "<s>", "</s>");
        EXPECT_EQ(detected.family(), expected) << source;
        EXPECT_FALSE(detected.isFallback()) << source;
        EXPECT_EQ(detected.note(), "") << source;
    }
}

TEST(ChatTemplate, UnknownOrMissingTemplatesFallBackToChatMl) {
    const ChatTemplate missing = ChatTemplate::detect("", "<s>", "</s>");
    EXPECT_EQ(missing.family(), ChatFamily::ChatMl);
    EXPECT_TRUE(missing.isFallback());
    EXPECT_EQ(missing.note(), "the model has no chat template (tokenizer.chat_template); using chatml");

    // Vicuna is not among the families.
    const ChatTemplate unknown = ChatTemplate::detect(
        "{% for message in messages %}{{ 'USER: ' + message['content'] + '\\nASSISTANT: ' }}{% endfor %}", "<s>",
        "</s>");
    EXPECT_EQ(unknown.family(), ChatFamily::ChatMl);
    EXPECT_TRUE(unknown.isFallback());
    EXPECT_EQ(unknown.note(), "unrecognized chat template; using chatml");
}

// docs/CHAT_TEMPLATES.md § ChatML (Qwen 2's default system message)
TEST(ChatTemplate, Qwen2AddsItsDefaultSystemMessage) {
    const ChatTemplate qwen = ChatTemplate::detect(kQwen2Source, "", "<|im_end|>");
    EXPECT_EQ(qwen.defaultSystem(), "You are a helpful assistant.");
    EXPECT_EQ(render(qwen, {{ChatRole::User, "Hi"}}),
              "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
              "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(render(qwen, {{ChatRole::System, "Be brief."}, {ChatRole::User, "Hi"}}, false),
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");

    // The same message written with Jinja "\n" escapes; template code is not a message.
    EXPECT_EQ(ChatTemplate::detect("{{ '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}", "", "").defaultSystem(),
              "You are Qwen.");
    EXPECT_EQ(ChatTemplate::detect("{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}", "",
                                   "")
                  .defaultSystem(),
              "");
}

TEST(ChatTemplate, StopTexts) {
    EXPECT_THAT(ChatTemplate(ChatFamily::ChatMl, "", "<|endoftext|>").stopTexts(),
                ElementsAre("<|im_end|>", "<|endoftext|>"));
    EXPECT_THAT(ChatTemplate(ChatFamily::Llama3, "<|begin_of_text|>", "<|eot_id|>").stopTexts(),
                ElementsAre("<|eot_id|>"));
    EXPECT_THAT(ChatTemplate(ChatFamily::Llama3, "<|begin_of_text|>", "<|end_of_text|>").stopTexts(),
                ElementsAre("<|eot_id|>", "<|end_of_text|>"));
    EXPECT_THAT(ChatTemplate(ChatFamily::Phi3, "<s>", "<|endoftext|>").stopTexts(),
                ElementsAre("<|end|>", "<|endoftext|>"));
    EXPECT_THAT(ChatTemplate(ChatFamily::Gemma, "<bos>", "<eos>").stopTexts(), ElementsAre("<end_of_turn>", "<eos>"));
    EXPECT_THAT(family(ChatFamily::Llama2).stopTexts(), ElementsAre("</s>"));
    EXPECT_THAT(family(ChatFamily::Mistral).stopTexts(), ElementsAre("</s>"));
    EXPECT_THAT(family(ChatFamily::Zephyr).stopTexts(), ElementsAre("</s>"));
    EXPECT_THAT(ChatTemplate(ChatFamily::Zephyr, "", "").stopTexts(), ElementsAre());
    EXPECT_THAT(ChatTemplate(ChatFamily::DeepSeek, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>").stopTexts(),
                ElementsAre("<｜end▁of▁sentence｜>"));
}

// docs/CHAT_TEMPLATES.md § DeepSeek
TEST(ChatTemplate, RendersDeepSeek) {
    EXPECT_EQ(render(family(ChatFamily::DeepSeek), kConversation),
              "You are terse.<｜User｜>Hi there!<｜Assistant｜>Hello! How can I help?<｜end▁of▁sentence｜>"
              "<｜User｜>Tell me a joke.<｜Assistant｜>");
    EXPECT_EQ(render(family(ChatFamily::DeepSeek), {{ChatRole::User, "Hi"}}, false), "<｜User｜>Hi");
}

// docs/CHAT_TEMPLATES.md § Reasoning
TEST(ChatTemplate, ReasoningSupportIsReadFromTheTemplate) {
    const auto support = [](std::string_view source) { return ChatTemplate::detect(source, "", "").reasoning(); };
    EXPECT_EQ(support(kDeepSeekR1Source), (ReasoningSupport{.dropsFromHistory = true, .promptOpensBlock = true}));
    EXPECT_EQ(support(kDeepSeekR1FirstSource), (ReasoningSupport{.dropsFromHistory = true}));
    EXPECT_EQ(support(kQwen3Source), (ReasoningSupport{.dropsFromHistory = true, .canSwitchOff = true}));
    EXPECT_EQ(support(kQwqSource), (ReasoningSupport{.dropsFromHistory = true, .promptOpensBlock = true}));
    for (const std::string_view source : std::initializer_list<std::string_view>{
             kLlama2Source, kLlama3Source, kQwen2Source, kMistralSource, kZephyrSource, kPhi3Source, kGemmaSource,
             {}}) {
        EXPECT_EQ(support(source), ReasoningSupport{}) << source;
    }
    // The same markers written with real newlines.
    EXPECT_TRUE(support("{% if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n' }}{% endif %}")
                    .promptOpensBlock);
}

const std::vector<ChatMessage> kThoughtConversation = {
    {ChatRole::User, "2 + 2?"},
    {ChatRole::Assistant, "<think>\nAdd them.\n</think>\n\n4."},
    {ChatRole::User, "And 3 + 3?"},
};

// The templates take an earlier turn's reasoning back out of the prompt.
TEST(ChatTemplate, ReasoningTemplatesKeepOnlyEarlierAnswers) {
    const ChatTemplate r1 = ChatTemplate::detect(kDeepSeekR1Source, "", "<｜end▁of▁sentence｜>");
    EXPECT_EQ(render(r1, kThoughtConversation),
              "<｜User｜>2 + 2?<｜Assistant｜>\n\n4.<｜end▁of▁sentence｜><｜User｜>And 3 + 3?<｜Assistant｜><think>\n");
    const ChatTemplate qwen3 = ChatTemplate::detect(kQwen3Source, "", "<|im_end|>");
    EXPECT_EQ(render(qwen3, kThoughtConversation),
              "<|im_start|>user\n2 + 2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n"
              "<|im_start|>user\nAnd 3 + 3?<|im_end|>\n<|im_start|>assistant\n");
    // Qwen's template leaves an assistant turn after the last user turn whole.
    std::vector<ChatMessage> endsWithReply(kThoughtConversation.begin(), kThoughtConversation.begin() + 2);
    EXPECT_EQ(render(qwen3, endsWithReply, false),
              "<|im_start|>user\n2 + 2?<|im_end|>\n"
              "<|im_start|>assistant\n<think>\nAdd them.\n</think>\n\n4.<|im_end|>\n");
    // A template that knows no reasoning passes the text through.
    const ChatTemplate qwen2 = ChatTemplate::detect(kQwen2Source, "", "<|im_end|>");
    EXPECT_NE(render(qwen2, kThoughtConversation).find("<think>\nAdd them.\n</think>\n\n4."), std::string::npos);
}

TEST(ChatTemplate, ThinkingSwitchesOffOnlyWhereTheTemplateCan) {
    const ChatTemplate qwen3 = ChatTemplate::detect(kQwen3Source, "", "<|im_end|>");
    const std::vector<ChatMessage> hi = {{ChatRole::User, "Hi"}};
    const std::string on = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    EXPECT_EQ(render(qwen3, hi), on);
    EXPECT_EQ(qwen3.render(hi, true, false).value_or(""), on + "<think>\n\n</think>\n\n");
    EXPECT_EQ(qwen3.render(hi, false, false).value_or(""), "<|im_start|>user\nHi<|im_end|>\n");
    EXPECT_EQ(qwen3.thinkingPrompt(true), "");
    EXPECT_EQ(qwen3.thinkingPrompt(false), "<think>\n\n</think>\n\n");
    EXPECT_EQ(qwen3.replyOpening(true), "");
    EXPECT_EQ(qwen3.replyOpening(false), "");

    // DeepSeek-R1 and QwQ always think: their prompts open the block either way.
    for (const std::string_view source : {kDeepSeekR1Source, kQwqSource}) {
        const ChatTemplate opens = ChatTemplate::detect(source, "", "");
        EXPECT_TRUE(opens.render(hi, true, false).value_or("").ends_with("<think>\n")) << source;
        EXPECT_EQ(opens.thinkingPrompt(false), "<think>\n");
        EXPECT_EQ(opens.replyOpening(true), "<think>\n");
    }
    EXPECT_EQ(render(ChatTemplate::detect(kDeepSeekR1FirstSource, "", ""), hi), "<｜User｜>Hi<｜Assistant｜>");
    // Others ignore the switch.
    EXPECT_EQ(ChatTemplate::detect(kQwen2Source, "", "").render(hi, true, false).value_or(""),
              render(ChatTemplate::detect(kQwen2Source, "", ""), hi));
}

TEST(ChatTemplate, FromVocabUsesItsTemplateAndSpecialTokens) {
    Vocab vocab;
    vocab.model = "llama";
    vocab.tokens = {"<unk>", "<s>", "</s>"};
    vocab.bos = 1;
    vocab.eos = 2;
    vocab.chatTemplate = std::string(kLlama2Source);
    const ChatTemplate llama2 = ChatTemplate::fromVocab(vocab);
    EXPECT_EQ(llama2.family(), ChatFamily::Llama2);
    EXPECT_EQ(render(llama2, {{ChatRole::User, "a"}, {ChatRole::Assistant, "b"}, {ChatRole::User, "c"}}),
              "[INST] a [/INST] b </s><s>[INST] c [/INST]");

    vocab.bos = -1;
    vocab.eos = -1;
    vocab.chatTemplate.clear();
    const ChatTemplate fallback = ChatTemplate::fromVocab(vocab);
    EXPECT_TRUE(fallback.isFallback());
    EXPECT_THAT(fallback.stopTexts(), ElementsAre("<|im_end|>"));
}

// The rendered prompt, encoded with parseSpecial, turns its markers into the
// vocab's special tokens (Phi-3's GGUF, when the test vectors are present).
TEST(ChatTemplate, Phi3PromptEncodesMarkersAsSpecialTokens) {
    const std::filesystem::path path =
        std::filesystem::path(PAGODA_SHARED_DIR) / "tokenizers" / "ggml-vocab-phi-3.gguf";
    if (!std::filesystem::exists(path)) {
        GTEST_SKIP() << "test vocab not found: " << path;
    }
    auto file = gguf::GgufFile::open(path);
    ASSERT_TRUE(file.has_value()) << file.error().message;
    auto vocab = loadVocab(*file);
    ASSERT_TRUE(vocab.has_value()) << vocab.error().message;
    const ChatTemplate phi3 = ChatTemplate::fromVocab(*vocab);
    EXPECT_EQ(phi3.family(), ChatFamily::Phi3);
    EXPECT_THAT(phi3.stopTexts(), ElementsAre("<|end|>", "<|endoftext|>"));

    auto tokenizer = createTokenizer(std::move(*vocab));
    ASSERT_TRUE(tokenizer.has_value()) << tokenizer.error().message;
    const std::string prompt = render(phi3, {{ChatRole::User, "Hi"}});
    EXPECT_EQ(prompt, "<|user|>\nHi<|end|>\n<|assistant|>\n");
    const std::vector<int32_t> ids = (*tokenizer)->encode(prompt, true, true);
    ASSERT_GE(ids.size(), 5u);
    EXPECT_EQ(ids.front(), (*tokenizer)->bos());
    EXPECT_EQ(ids[1], 32010);  // <|user|>
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 32007), 1);  // <|end|>
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 32001), 1);  // <|assistant|>
    EXPECT_TRUE((*tokenizer)->isEndOfGeneration(32007));
}

}  // namespace
}  // namespace pagoda
