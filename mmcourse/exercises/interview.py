"""Interview preparation: written, coding and design questions with model answers, rubrics and auto-checked parts.

Every question is a :class:`~mmcourse.exercises.rubric.RubricProblem`: answer it (aloud
or in writing), then ``interview.qN.reveal()`` shows the model answer and its rubric;
tick the points you covered (checkboxes in a live notebook, or
``interview.qN.rubric(ticked=[1, 3])``). Prose is never machine-graded. The parts that
can be checked (a number, a choice, code) are sub-questions: ``interview.qN.check()``
runs them, with the same checkers as the topic exercises (one checker serves both).
"""
from __future__ import annotations

from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem
from .rubric import SITTING, RubricProblem  # noqa: F401  (SITTING: the scores of this sitting)

TITLE = "09 · Interview preparation"

# (topic, question, model answer, [rubric point, ...]); the first four are the seed lesson's questions
_QUESTIONS = [
    ("CLIP", "How does CLIP work, and what makes it powerful?",
     "CLIP trains two encoders, one for images and one for text, so that both map into one shared embedding space. "
     "Training uses a symmetric contrastive loss over a batch of image–caption pairs: each image should score its own "
     "caption above every other caption in the batch, and vice versa. It was trained on 400 million web pairs, so the "
     "supervision is natural language rather than fixed labels. The power is the shared space: any image can be "
     "compared with any text, which gives zero-shot classification (compare an image with a prompt per class), "
     "retrieval in both directions and transfer to new concepts without fine-tuning; the paper reports 76.2 % "
     "ImageNet zero-shot, on par with a supervised ResNet-50.",
     ["two encoders / towers",
      "a shared embedding space",
      "the contrastive objective",
      "zero-shot use"]),
    ("SigLIP", "What is SigLIP and how does it differ from CLIP?",
     "SigLIP keeps CLIP's two towers but replaces the softmax contrastive loss with a pairwise sigmoid loss: every "
     "image–text pair in the batch is an independent binary decision (match or not), with a learned temperature and "
     "a learned bias. Because no softmax normalises over the batch, a pair's loss does not depend on the other pairs' "
     "scores, the loss can be computed in chunks or across devices without gathering the full similarity matrix, and "
     "the SigLIP paper (Zhai et al. 2023) reports that its advantage over softmax is largest at small batches and "
     "that gains saturate around 32k; notebook 02 did not reproduce the small-batch advantage at the course's tiny "
     "scale (InfoNCE was ahead at every batch size), so treat it as the paper's web-scale finding. Its probabilities are independent per label (multi-label), not a distribution.",
     ["a sigmoid / binary loss per pair",
      "no normalisation over the batch",
      "the small-batch advantage the paper reports (not reproduced in notebook 02)",
      "the learned bias"]),
    ("ImageBind", "What is ImageBind and why is it significant?",
     "ImageBind puts six modalities (images, text, audio, depth, thermal and IMU) into one embedding space by "
     "training each new modality only against images, the binding modality, starting from a frozen image–text "
     "model. Images naturally co-occur with the others (video gives image and sound, RGB-D cameras give image and "
     "depth), so no paired data between, say, audio and text is needed. Alignment between modalities never trained "
     "together emerges through the shared image space: audio-to-text retrieval, audio-to-depth retrieval and "
     "embedding arithmetic work zero-shot.",
     ["images as the binding modality",
      "no pairs between the other modalities",
      "emergent alignment",
      "the modalities it covers"]),
    ("ColPali", "What is ColPali and when would you use it for document retrieval?",
     "ColPali embeds each document page as an image with a vision-language model and keeps one 128-d vector per "
     "image patch instead of one vector per page; a query keeps one vector per token. Scoring is late interaction "
     "(MaxSim, from ColBERT): each query token takes its most similar patch, and the maxima are summed. Because no "
     "OCR is involved and evidence stays local, it shines on pages where text extraction fails or loses meaning: "
     "charts, tables, complex layouts, scans. The price is storage and compute: about a thousand vectors per page.",
     ["pages embedded as images",
      "multi-vector: one vector per patch/token",
      "MaxSim / late interaction",
      "when: charts, tables, layouts where OCR fails"]),
    ("losses", "What does the temperature (logit scale) do in a contrastive loss, and what goes wrong if it is badly set?",
     "Cosine similarities live in [-1, 1]; the logit scale (1/temperature) stretches them before the softmax or "
     "sigmoid. A large scale makes the distribution sharp, so the loss concentrates on the hardest negatives; a small "
     "one makes it flat, so every pair looks alike and gradients are weak. Too large and training becomes unstable "
     "(CLIP clamps the scale at 100); too small and the model cannot express confident matches. That is why CLIP "
     "learns it, starting at 1/0.07, and SigLIP starts at 10.",
     ["it scales the cosine similarities",
      "too high: unstable / over-focused on hard negatives",
      "too low: flat, weak gradients",
      "it is learned / clamped"]),
    ("losses", "Why is CLIP's loss symmetric?",
     "InfoNCE in one direction (image to text) only asks each image to pick its caption among the batch's captions. "
     "The other direction asks each caption to pick its image among the batch's images, which constrains the text "
     "tower and the columns of the similarity matrix. Averaging both makes the space usable for retrieval both ways "
     "and gives each encoder a full set of negatives; dropping one direction leaves one of the two retrieval "
     "directions under-trained.",
     ["both directions: image→text and text→image",
      "each side gets negatives",
      "retrieval both ways"]),
    ("losses", "Where do the negatives of a contrastive loss come from, and why does batch size matter?",
     "They come from the batch itself: for each image, the other captions in the batch are its negatives (in-batch "
     "negatives), and vice versa. A bigger batch therefore means more and, on average, harder negatives, a tighter "
     "bound on mutual information for InfoNCE and better retrieval; CLIP used 32,768 (Radford et al. 2021). The softmax normalises over "
     "those negatives, so with small batches the task is too easy. The SigLIP paper reports that the sigmoid loss "
     "depends less on this and beats softmax at small batches; notebook 02 of this course measured InfoNCE ahead at "
     "every batch size on its tiny task, so that advantage is the paper's claim at web scale, not something the "
     "course reproduced.",
     ["in-batch negatives",
      "larger batch: more/harder negatives",
      "softmax vs sigmoid: what the SigLIP paper reports, and that the course did not reproduce it"]),
    ("SigLIP", "Why does SigLIP initialise its bias at -10?",
     "At initialisation all similarities are near 0. With N positives and N² − N negatives per batch, almost every "
     "pair is a negative, so a model that starts out saying 'no match' for every pair is already right on nearly all "
     "of them. A bias of -10 (with scale 10) gives σ(−10) ≈ 4.5e-5 for an unrelated pair, so the first steps are not "
     "spent pushing down the huge mass of easy negatives, and the loss starts small and stable; the positives are "
     "learned from there.",
     ["the positive/negative imbalance",
      "starts predicting 'no match'",
      "stable first steps"]),
    ("CLIP", "Why must embeddings be L2-normalised before comparing them?",
     "Contrastive losses like CLIP's and SigLIP's are computed on cosine similarities of normalised embeddings, so "
     "only the direction of a vector carries meaning. The raw dot product also depends on the vector lengths, which "
     "the training never controlled: items with long vectors would score high for every query. Normalise both sides "
     "(then the dot product is the cosine), or use an inner-product index on normalised vectors.",
     ["losses are trained on cosine similarity",
      "vector length leaks into the dot product",
      "normalise both sides"]),
    ("CLIP", "What is prompt ensembling and why does it help zero-shot classification?",
     "Instead of embedding a bare class name, you embed it in several templates ('a photo of a {}', 'a drawing of a "
     "{}', …), normalise each text embedding, average them and normalise again. The class embedding then sits in the "
     "middle of many phrasings, so it depends less on one template's quirks and on the ambiguity of the bare word; "
     "CLIP's paper reports a few points of ImageNet accuracy from ensembling 80 templates. The cost is paid once per "
     "class, not per image.",
     ["several templates per class",
      "average of normalised embeddings",
      "robust to wording / ambiguity",
      "cost once per class"]),
    ("CLIP", "How does zero-shot classification work with CLIP?",
     "Write each class as a text prompt, embed the prompts with the text encoder and the image with the image "
     "encoder, normalise, and take the cosine similarity of the image with every class prompt. Scale by the logit "
     "scale and softmax over the classes to get probabilities; the arg-max is the prediction. No labelled training "
     "images are used: the classifier's weights are the text embeddings.",
     ["classes as text prompts",
      "similarity of the image with every class",
      "softmax over classes",
      "no labelled training images"]),
    ("practice", "Why does CLIP do poorly on medical or satellite images, and what would you do about it?",
     "Its training data is web photos with alt text; chest X-rays, histology slides or satellite tiles are rare there, "
     "their visual statistics differ, and their captions use vocabulary CLIP barely saw. Zero-shot accuracy drops "
     "sharply (distribution shift). Options: fine-tune on in-domain image–text pairs (fully, with one pretrained tower frozen "
     "as in LiT, or with adapters), use a domain model (e.g. BiomedCLIP for medicine, satellite-specific CLIPs), and "
     "always evaluate on a labelled in-domain set before trusting it.",
     ["training distribution: web photos",
      "distribution shift / rare domain",
      "fine-tune on in-domain pairs",
      "evaluate in-domain"]),
    ("practice", "Why not use CLIP's text encoder for text-to-text search?",
     "CLIP's text tower was trained only to match captions with images, on short alt-text with a 77-token limit. It "
     "learned what makes a caption visually distinctive, not paraphrase or topical similarity between passages. "
     "Dedicated sentence models (SBERT, E5, BGE; the course uses all-MiniLM-L6-v2) are trained on text pairs for "
     "exactly that, and notebook 07 measures the gap. Use CLIP for image–text, a text model for text–text, and fuse "
     "them.",
     ["trained for image–text, not text–text",
      "short context",
      "dedicated sentence models",
      "measured / fuse both"]),
    ("losses", "What is LiT (locked-image tuning), and why freeze one tower?",
     "LiT (Zhai et al. 2022, 'Locked-image Tuning') trains a contrastive image–text model with a pretrained *image* "
     "tower locked (frozen) and only the text tower learning to meet it; of the variants the paper compared "
     "(locked, unlocked, from scratch), locking the image tower worked best for zero-shot transfer. The frozen tower "
     "keeps its representation (trained on far more data), training is cheaper (no gradients through it, and its "
     "outputs can be cached) and the learned tower aligns to a stable target. The course's own checkpoints do the "
     "mirror image of LiT: they lock the *text* tower (a frozen pretrained all-MiniLM-L6-v2) and train small vision, "
     "audio and page towers to meet it, because a good pretrained text encoder ships as a package and the course's "
     "images are its own.",
     ["one pretrained tower frozen/locked, the other learns to meet it",
      "LiT locks the image tower, and the paper found that best",
      "cheaper: no gradients, cached outputs",
      "keeps the pretrained representation",
      "the course locks the text tower: the mirror image of LiT"]),
    ("ColPali", "What do MaxSim scoring and ColPali storage cost?",
     "One query–page score computes Tq × P dot products of dimension D (2·Tq·P·D FLOPs): with 30 query tokens, about "
     "1,030 patches and 128 dims that is ~7.9 MFLOP per page, ~7.9 GFLOP per query over 1,000 pages, so it is a "
     "matrix-multiply workload, fast on a GPU and chunked on a CPU. Storage is P × D numbers per page: ~263 KB in "
     "float16, ~170× a single 384-d float32 vector. At millions of pages that drives the design.",
     ["compute 2·Tq·P·D",
      "storage per page (vectors × dims × bytes)",
      "comparison with single-vector"]),
    ("ColPali", "How can you cut ColPali's storage without losing much quality?",
     "Store fewer, smaller vectors: float16 or int8 instead of float32; binarise (1 bit per dimension, Hamming or "
     "binary dot products) for a 32× cut with a re-ranking stage; pool similar patch vectors hierarchically (pool "
     "factor 2–3 keeps most of the quality, notebook 06 measures it); drop background/blank patches; and use a "
     "two-stage pipeline where a cheap single-vector or binary index retrieves candidates and full MaxSim re-ranks "
     "them.",
     ["lower precision / quantise",
      "binarise",
      "token pooling",
      "two-stage re-ranking"]),
    ("binding", "Why does ImageBind bind every modality to images rather than to text?",
     "Because images are the modality that naturally co-occurs with all the others at scale: video pairs frames with "
     "audio, RGB-D sensors pair images with depth, egocentric video pairs frames with IMU. Text rarely comes with "
     "depth or IMU data. Since an image–text model already links images to language, binding X to images gives X a "
     "link to text for free, without collecting a single (X, text) pair.",
     ["images co-occur with other modalities",
      "image–text model already links to language",
      "no (X, text) pairs needed"]),
    ("binding", "Why does audio-to-text retrieval work in ImageBind even though no audio–text pairs were used?",
     "Audio is trained to land near the image it co-occurs with; the image embedding, from a frozen image–text model, "
     "already lies near the text describing it. Alignment is roughly transitive through the shared image space: "
     "audio ≈ image ≈ text. It works only as far as the image tower stays fixed (unfreezing it lets the space drift "
     "away from text) and as far as the sound is visually grounded; notebook 05 measures both.",
     ["audio trained against images",
      "frozen image–text space already aligned with text",
      "transitivity through the shared space",
      "limits: unfreezing / grounding"]),
    ("search", "When does hybrid (multi-modal) search beat a single modality?",
     "When the modalities carry complementary evidence and their errors are not the same: text catches exact names, "
     "numbers and rare terms the image model misses; the image model catches visual attributes the text never "
     "mentions, or documents with no text at all. Fusion helps when both retrievers are reasonably good and "
     "disagree; if one is much worse, a naive equal weight can hurt, so tune the weight (or use RRF) on labelled "
     "queries, as notebook 07 does.",
     ["complementary evidence",
      "examples of each side's strength",
      "tune the weight on labelled queries"]),
    ("search", "Weighted score fusion or reciprocal rank fusion: how do you choose?",
     "Weighted fusion adds the retrievers' scores after normalising them (min-max, z-score); it uses how confident "
     "each retriever is, but depends on score calibration and needs the weight tuned. RRF ignores scores and sums "
     "1/(k + rank) over the rankings; it is robust to incomparable scales and needs almost no tuning (k = 60), but "
     "throws away score gaps. Start with RRF when scores are not comparable; use weighted fusion when you can "
     "calibrate and tune on labelled queries.",
     ["weighted fusion uses normalised scores",
      "RRF uses ranks only: 1/(k + rank)",
      "trade-off: calibration vs robustness"]),
    ("search", "What are the two bugs in the seed lesson's hybrid index?",
     "First, it searches each FAISS index for its top results, which come back sorted by score, and then adds the two "
     "score lists position by position: position i of the text list and of the image list are usually different "
     "documents, so scores of unrelated documents are summed and the ids are wrong. Second, documents without an "
     "image (or text) get a zero placeholder vector, which scores exactly 0 for every query instead of being "
     "excluded. The fix: per-modality indexes keyed by document id, fusion aligned by id, and no placeholders.",
     ["sorted lists added elementwise / by position",
      "different documents mixed",
      "zero vectors for missing modalities",
      "fix: align by document id"]),
    ("search", "How should a search index handle a document that lacks a modality?",
     "Leave it out of that modality's index entirely, and keep indexes keyed by document id. At query time each "
     "modality scores only the documents it has; fusion then either uses only the available evidence (renormalising "
     "the weights over present modalities) or ranks with RRF, where a missing list simply contributes nothing. Never "
     "insert zero vectors: they are real points that get real scores.",
     ["not in that modality's index",
      "fusion over available modalities",
      "no zero vectors"]),
    ("scale", "Flat, IVF, HNSW or IVF-PQ: how do you choose a FAISS index?",
     "Flat is exact and needs no training; it is the right choice while a full scan fits the latency budget. Notebook "
     "08 measures where that ends (one thread, one query at a time: tens of thousands of 512-d vectors for a 10 ms "
     "budget); more threads or batched queries move it up, a larger dimension down. IVF clusters the "
     "vectors and searches a few clusters (nprobe trades recall for speed); it needs training and suits large static "
     "collections. HNSW is a graph with excellent recall/latency and no training, but costs extra memory per vector "
     "for its links (about 2·M neighbour ids of 4 bytes on the base layer, e.g. 256 bytes at M = 32, whatever the "
     "dimension) and slow builds. IVF-PQ compresses vectors to a few bytes, the choice when memory is the limit, at some recall "
     "cost. Measure recall@k against flat at your target latency, as notebook 08 does.",
     ["flat: exact",
      "IVF: clusters and nprobe",
      "HNSW: graph, memory",
      "PQ: compression for memory",
      "measure recall vs latency"]),
    ("scale", "How do you train a contrastive model across many GPUs?",
     "Each rank embeds its local batch; to get the global batch's negatives, features are all-gathered so every rank "
     "scores its data against all N·world items. The gather must carry gradients: every rank's loss uses my features "
     "(as negatives), so the gather's backward has to sum those gradients back to me (all_gather with autograd, e.g. "
     "torch.distributed.nn's all_gather, open_clip's gather_with_grad=True). With that, each rank may compute either "
     "the full logit matrix or only its own n rows ('local loss', local_loss=True: n × N·world logits instead of "
     "(N·world)², the same gradients with less memory). A plain all_gather without gradients does *not* reproduce "
     "the one-process gradient, whatever local_loss is: with local_loss=False (open_clip's defaults, own slice put "
     "back with its graph) each rank gets only its own loss's share, and after DDP's averaging the gradient is "
     "divided by the world size (notebook 08 measures ×0.5 with 2 ranks); with local_loss=True the negatives' terms "
     "from other ranks are lost. SigLIP can avoid the all-gather by passing text features around a ring of "
     "neighbours, chunk by chunk.",
     ["all-gather features for global negatives",
      "the gather must carry gradients back to the producing rank (gather_with_grad=True)",
      "a plain gather does not reproduce it: ×1/world after DDP averaging (×0.5 at 2 ranks)",
      "local loss: own rows only, less memory, exact only with gradient-carrying gather",
      "SigLIP ring exchange"]),
    ("losses", "How can the sigmoid loss be computed without materialising the N×N matrix?",
     "Each pair's term is independent, so the sum can be accumulated over blocks: score all images against a chunk "
     "of texts, add the chunk's -log σ terms (positives sit where the chunk's rows meet their own texts), and move to "
     "the next chunk. Peak memory is N × chunk instead of N², and the result is identical. Across devices the chunks "
     "are the neighbours' text features passed around a ring.",
     ["independent pair terms",
      "accumulate over chunks/blocks",
      "memory N × chunk",
      "identical result"]),
    ("practice", "Why must preprocessing match the checkpoint?",
     "A vision tower is trained on inputs resized, cropped and normalised one particular way (mean/std, resolution, "
     "interpolation). Different constants shift every input away from what the first layer expects, and nothing "
     "fails loudly: accuracy silently drops. Always use the transform the library returns with the weights "
     "(open_clip's preprocess, transformers' processor); notebook 03 measures the drop from the wrong normalisation.",
     ["trained with specific resize/normalisation",
      "silent failure",
      "use the checkpoint's own transform"]),
    ("SigLIP", "Why does SigLIP need padding=\"max_length\" for its text inputs?",
     "SigLIP's text tower was trained on text padded to a fixed length (64 tokens) and its pooled embedding is read "
     "from the last position, which during training was a pad token. Padding to the longest item in the batch moves "
     "that position and feeds the model inputs unlike its training ones, so embeddings shift and retrieval drops "
     "without any error. Use the processor with padding='max_length', as the model card says; notebook 03 measures "
     "the drop.",
     ["trained on fixed-length padding",
      "pooling reads a position affected by padding",
      "silent drop"]),
    ("SigLIP", "Sigmoid or softmax probabilities: what is the difference, and when do you want which?",
     "Softmax turns one image's logits into a distribution over the labels: they compete and sum to one, which suits "
     "exactly-one-label classification but always names a winner, even when no label fits. Sigmoid gives each label "
     "an independent probability: several can be high (multi-label) or all low (none applies), which suits tagging, "
     "retrieval thresholds and open-set questions. SigLIP is trained for the sigmoid; applying a softmax to its "
     "logits discards the bias's calibration.",
     ["softmax: labels compete, sum to one",
      "sigmoid: independent per label",
      "multi-label / none applies",
      "pick by task"]),
    ("evaluation", "Recall@k, nDCG@k or mAP: which metric when?",
     "Recall@k asks whether the relevant items are in the top k: right for a retriever feeding a re-ranker or an LLM "
     "with k slots. nDCG@k rewards putting the most relevant items first and handles graded relevance (highly vs "
     "partly relevant). mAP averages precision at each relevant item over the whole ranking: good when every "
     "relevant item matters and relevance is binary. Report the one that matches how results are consumed, with k "
     "set to what the user or the next stage actually sees.",
     ["recall@k: in the top k",
      "nDCG: graded relevance, position",
      "mAP: precision over the ranking",
      "match the metric to use"]),
    ("CLIP", "What is the modality gap?",
     "In CLIP-like models, image embeddings and text embeddings occupy two separate narrow cones of the sphere: even "
     "matching pairs have cosine similarity far below 1 (often 0.2–0.4), and any image is closer to other images than "
     "to its caption. It comes from initialisation and the contrastive loss's temperature. It does not hurt ranking "
     "within one modality pair, but it matters for thresholds, for mixing image and text embeddings in one index, "
     "and for embedding arithmetic.",
     ["separate regions / cones",
      "matching pairs far from cosine 1",
      "consequence: thresholds, mixing, arithmetic"]),
    ("CLAP", "How does CLAP turn audio into something a transformer can embed?",
     "Audio is loaded, mixed to mono and resampled to the model's rate (48 kHz for LAION's CLAP), then cut or padded to "
     "a fixed duration (about 10 s; longer clips are chunked or, in the 'fused' variants, summarised with a global "
     "view plus random local crops). A short-time Fourier transform and a mel filter bank give a log-mel "
     "spectrogram, an image-like time–frequency array that the audio encoder (HTSAT, a Swin-style transformer) "
     "embeds; a projection maps it into the space shared with the text encoder.",
     ["mono and resampling",
      "fixed length: pad/truncate/chunk",
      "log-mel spectrogram",
      "projection into the shared space"]),
    ("practice", "How do you fine-tune CLIP on a new domain without destroying its zero-shot ability?",
     "Keep the update small and anchored: a low learning rate with warm-up, few epochs, and freeze most layers (or "
     "one whole tower, as LiT does with the image tower) or train adapters/LoRA; keep the contrastive loss and in-domain image–text pairs; mix "
     "in general data; and interpolate the fine-tuned weights with the original ones (WiSE-FT), which recovers "
     "robustness. Measure both in-domain accuracy and a general zero-shot benchmark before and after.",
     ["small, anchored updates",
      "weight interpolation / mixing general data",
      "measure both in-domain and general"]),
    ("losses", "What are hard negatives, and how do they help contrastive training?",
     "Hard negatives are non-matching items that the model currently scores close to the positive: a caption that "
     "differs from the right one by one attribute, a near-duplicate image. Random in-batch negatives are mostly easy, "
     "so the gradient signal fades as training goes on; adding mined hard negatives (from an index, or by building "
     "batches of similar items) keeps the task informative and teaches fine distinctions. Too hard, and false "
     "negatives (actually matching items) inject label noise.",
     ["similar but non-matching",
      "easy random negatives give little signal",
      "mining",
      "false negatives risk"]),
]


# ----------------------------------------------------------------------------- deeper questions (what a strong interviewer asks)
# (topic, kind, question, model answer, rubric points)
_DEEP = [
    ("losses", "coding", "Derive the gradient of CLIP's InfoNCE loss with respect to the logits, then implement the "
     "backward pass by hand.",
     "For one row, cross-entropy with target t gives ∂CE/∂z_j = softmax(z)_j − [j = t]: predicted minus target. CLIP's "
     "loss averages the row cross-entropies (a mean over N) and the column ones, then halves the sum, so "
     "∂L/∂Z = (softmax_rows(Z) − I + softmax_cols(Z) − I) / (2N). Through Z = s·X Yᵀ the chain rule gives "
     "∂L/∂X = s·G Y and ∂L/∂Y = s·Gᵀ X (G = ∂L/∂Z), and ∂L/∂s = Σ G ⊙ X Yᵀ. Every positive pulls its pair together "
     "with weight (p_ii − 1) < 0, every negative pushes with its probability p_ij: hard negatives (high p_ij) get the "
     "largest push, which is the temperature's lever. Use a stable softmax: exp of logits near the cap overflows.",
     ["∂CE/∂z = softmax − one-hot (predicted minus target)", "both directions, averaged, each a mean over N: /(2N)",
      "chain rule through the matrix product: s·G Y and s·Gᵀ X", "interpretation: hard negatives get the largest push",
      "numerical stability (softmax, not exp)"]),
    ("scale", "coding", "Implement CLIP's loss across GPUs with an all-gather, and explain why a plain gather halves "
     "the gradient on 2 GPUs.",
     "Each rank all-gathers the features so its images compete with all world·n texts. The loss on every rank "
     "depends on my features (as other ranks' negatives), so the gather's backward must send the *sum over ranks* "
     "of the gradients back to the producer: an autograd Function whose forward is all_gather + cat and whose "
     "backward is all_reduce(sum) + my slice (torch.distributed.nn's all_gather, open_clip's gather_with_grad=True). "
     "Then the features' gradient on each rank is world × the one-process gradient and DDP's averaging divides it "
     "back: exact. With a plain all_gather the gathered copies are constants; putting my own slice back with its graph "
     "(open_clip's default with local_loss=False) gives me only my own loss's gradient, ∂L/∂x_r instead of "
     "world·∂L/∂x_r, so after DDP's averaging the step is 1/world of the right one: ×0.5 on 2 GPUs (notebook 08 "
     "measures exactly that). local_loss=True (own rows only) saves memory and is exact only with the gradient-"
     "carrying gather.",
     ["all-gather for global negatives", "backward = all_reduce(sum) then my slice (autograd through the gather)",
      "world × one-process gradient, DDP averaging divides back", "plain gather: own share only → ×1/world (×0.5 at 2)",
      "local_loss: memory saving, exact only with gather_with_grad"]),
    ("scale", "coding", "Your index is split across 16 shards. How do you merge their top-k results, and what can go "
     "wrong?",
     "Each shard returns its own top-k (ids and scores, best first). The global top-k is the top-k of the union: "
     "concatenate (lists can be shorter than k, or empty) and select by score (a heap merge of sorted lists, "
     "O(k log S)), with a deterministic tie-break. Pitfalls: taking the first k in shard order; comparing scores "
     "that are not comparable across shards (different metrics, or per-shard normalisation or PQ codebooks: "
     "re-score the candidates exactly if needed); returning shard-local ids instead of global ids; asking each "
     "shard for fewer than k (the global top-k may all come from one shard); and the tail latency of the slowest "
     "shard, which sets the query's latency.",
     ["top-k of the union, not per-shard order", "shards may return fewer than k (or none); ask each for k",
      "global ids and comparable scores (re-score if needed)", "tie-break, heap merge", "latency = slowest shard"]),
    ("scale", "design", "Estimate the memory and query cost of an IVF-PQ index.",
     "Per vector: a PQ code of m sub-quantiser indices of nbits each (m·nbits/8 bytes, e.g. 64 bytes at m = 64, "
     "nbits = 8) plus its id (8 bytes in FAISS). Fixed: nlist coarse centroids (nlist·d·4 bytes) and the codebooks "
     "(2^nbits·d·4 bytes). So 1 B vectors at m = 64 take ~72 GB instead of 2 TB in float32 (512-d). A query compares "
     "with nlist centroids, builds an m × 2^nbits distance table, then scans about N·nprobe/nlist codes with m table "
     "look-ups each: at N = 100 M, nlist = 65,536, nprobe = 32 that is ~49 k codes, ~3 M look-ups, well under a "
     "millisecond per core. Recall is bounded by PQ's approximation: re-rank a shortlist with exact vectors (from "
     "disk or a compressed store) when it matters, and measure recall@k against a flat index.",
     ["bytes per vector = m·nbits/8 + id", "fixed part: coarse centroids and codebooks",
      "codes scanned ≈ N·nprobe/nlist, m look-ups each", "recall cost; re-rank a shortlist; measure vs flat"]),
    ("scale", "design", "Design text→image search over 1 billion images: 1,000 queries per second, p99 under 100 ms, "
     "new images searchable within an hour.",
     "Embedding: a ViT-B/32 CLIP-class model (512-d output) at ~2,000 images/s per modern GPU in fp16 needs "
     "1e9/2,000 s ≈ 139 GPU-hours for the backfill, spread over a cluster; new images stream through the same "
     "encoder. Storage per vector: 2,048 bytes in fp32, 1,024 in fp16, 64 with PQ (m = 64): 2 TB, 1 TB or 64 GB "
     "(+ 8 GB ids) for the whole set. Index: IVF-PQ (or a graph index on compressed vectors) sharded by id across "
     "machines so each shard fits in RAM with headroom; queries fan out to all shards (or to replicas), each "
     "returns its top-k, a merger takes the global top-k and re-ranks a shortlist with fp16 vectors. Text "
     "queries are embedded once per query (cache popular ones). Freshness: new vectors go into a small in-memory "
     "delta index searched alongside the main one and merged in periodically; deletions are tombstones. "
     "Latency: p99 is the slowest shard's, so replicate shards and keep nprobe tuned to the budget. Measure "
     "recall@k against exact search on a sample, and monitor drift when the encoder changes (re-embed everything: "
     "embeddings of two model versions are not comparable).",
     ["embedding cost (GPU-hours) for the backfill and the stream", "bytes per vector fp32 / fp16 / PQ and totals",
      "index choice and sharding; fan-out and merge", "freshness: delta index, periodic merge, tombstones",
      "latency: slowest shard, replicas; recall measured vs exact", "model versions are not comparable: re-embed"]),
    ("ColPali", "design", "ColBERTv2/PLAID compress late-interaction vectors with residuals. How does that compare "
     "with storing ColPali's page vectors?",
     "ColBERTv2 clusters all token vectors and stores each as its nearest centroid's id plus a quantised residual "
     "(1 or 2 bits per dimension): at 128-d and 2 bits that is 32 bytes of residual + a 4-byte centroid id ≈ 36 "
     "bytes per vector instead of 256 in fp16, ~7×. PLAID then uses the centroid ids alone to prune candidates "
     "before decompressing residuals for exact MaxSim on a shortlist. ColPali stores ~1,030 vectors per page: 264 KB "
     "per page in fp16, ~37 KB with 2-bit residuals; token pooling (notebook 06) and binarisation cut further. The "
     "same machinery applies because ColPali's vectors are ColBERT-style 128-d vectors; the cost is a little "
     "quality, measured in nDCG.",
     ["centroid id + quantised residual per vector", "bytes: ~36 vs 256 per 128-d vector (fp16)",
      "PLAID: centroid-based candidate pruning, then exact MaxSim", "ColPali: ~1,030 vectors/page; pooling, binarisation"]),
    ("CLIP", "written", "What is the modality gap, and when does it matter in practice?",
     "Image and text embeddings of CLIP-like models sit in two separate cones of the sphere (Liang et al. 2022): a "
     "matching pair's cosine is far below 1, and any image is closer to other images than to its caption. It "
     "arises from the encoders' initialisation (each cone starts narrow) and is kept by the contrastive loss at a "
     "low temperature. Ranking images for a text query is unaffected (all candidates share the offset), but it "
     "matters when you threshold cosine scores, mix image and text vectors in one index (a text query retrieves "
     "texts first), or do embedding arithmetic across modalities; centring each modality or a learned projection "
     "reduces it.",
     ["two separate cones; matching cosine far below 1", "cause: initialisation + contrastive loss / temperature",
      "ranking within one modality pair unaffected", "matters for thresholds, mixed indexes, arithmetic"]),
    ("CLIP", "written", "Do CLIP-style models understand composition? 'A red circle left of a blue square' vs 'a blue "
     "circle left of a red square'.",
     "Largely not: contrastive training on web captions rarely needs word order or attribute binding to pick the "
     "right caption among random in-batch negatives, so text encoders behave much like bags of words (Yuksekgonul et "
     "al. 2023, 'When and why vision-language models behave like bags-of-words'; Winoground). Swapping the attributes "
     "keeps the same words, so the two captions get nearly the same embedding and the model scores both alike. "
     "Fixes: hard negatives that swap attributes or order during training (NegCLIP), compositional benchmarks in "
     "evaluation (ARO, SugarCrepe, Winoground), or a re-ranker with cross-attention. The course's two-object scenes "
     "are a ready-made probe: embed both captions and see whether the right image ranks first.",
     ["bag-of-words behaviour: order/binding barely matter", "why: random in-batch negatives don't require it",
      "fixes: swapped-attribute hard negatives (NegCLIP)", "evaluate on compositional benchmarks"]),
    ("practice", "written", "How was the training data of open CLIP models curated (LAION, DataComp, MetaCLIP), and "
     "why does it matter?",
     "LAION-400M/5B took Common Crawl image–alt-text pairs and kept those whose OpenAI-CLIP image–text similarity "
     "passed a threshold (≈0.28–0.3), plus NSFW and deduplication filters: cheap, but it inherits CLIP's biases. "
     "DataComp (Gadre et al. 2023) fixed the model and training recipe and made the *data filter* the competition: "
     "CLIP-score filtering combined with image-based clustering filters beat larger unfiltered pools, showing "
     "that data quality moves zero-shot accuracy as much as scale. MetaCLIP (Xu et al. 2023) reconstructed CLIP's "
     "curation without a CLIP filter: substring-match captions against ~500 k metadata entries and balance the "
     "number of pairs per entry (capping head concepts), matching or beating CLIP's data. The lesson: curation "
     "(filtering, balancing, deduplication, test-set decontamination) is a first-class lever.",
     ["LAION: CLIP-score threshold filtering (inherits CLIP's biases)", "DataComp: fixed training, compete on filtering",
      "MetaCLIP: metadata matching + balancing without a CLIP filter", "curation matters as much as scale; decontaminate"]),
    ("losses", "design", "CLIP's learned temperature hits its cap during training. What does that mean and what do "
     "you do?",
     "CLIP learns t with logit_scale = exp(t), initialised at 1/0.07 ≈ 14.3 and clamped at 100 (temperature 0.01). "
     "The scale grows because sharper softmaxes lower the loss once the model separates pairs well; hitting the "
     "cap means the loss wants even sharper logits, often because the task became easy (small batches, duplicates, "
     "easy negatives) or the model is over-confident. At the cap the scale stops learning; gradients through "
     "it vanish and logits near ±100 need a stable softmax and care in fp16. Check the batch and data (harder or more "
     "negatives), watch the loss and retrieval, and keep the clamp: removing it tends to destabilise training. "
     "SigLIP's scale and bias are learned too, starting at 10 and −10.",
     ["logit_scale = exp(t), init 1/0.07 ≈ 14.3, clamped at 100 (temperature 0.01)",
      "why it rises: sharper logits lower the loss", "at the cap: no more learning; over-confidence; fp16 care",
      "what to do: harder/more negatives, keep the clamp, monitor"]),
    ("scale", "design", "How much memory does an HNSW index add per vector, and does it depend on the embedding "
     "dimension?",
     "HNSW stores the vectors plus a graph. On the base layer each node keeps up to 2·M neighbour ids (FAISS: "
     "4-byte ints), and about 1/M of the nodes also appear on upper layers with M links each: roughly 2·M·4 bytes "
     "per vector plus a little, e.g. ~256 bytes at M = 32. That does not depend on the dimension: a ViT-B CLIP "
     "vector is 512-d (2,048 bytes in fp32) and the links are an extra ~12 %; for a 64-d vector the same links "
     "would be 100 %. Bigger M improves recall and costs memory and build time; HNSW cannot drop the full vectors "
     "unless you pair it with compression (HNSW over PQ codes).",
     ["≈ 2·M neighbour ids × 4 bytes on the base layer (+ upper layers)", "independent of the dimension",
      "relative cost depends on vector size (512-d ViT-B: ~12 %)", "M trades recall vs memory/build time"]),
    ("losses", "written", "Why does the sigmoid loss need a bias and the softmax loss not?",
     "The softmax is invariant to adding a constant to all of an image's logits, so a bias would cancel. The "
     "sigmoid judges each pair against a fixed threshold at 0: with N positives and N² − N negatives per batch, "
     "the bias sets where 'match' begins and absorbs the prior that almost every pair is a negative; SigLIP starts "
     "it at −10 so that σ(−10) ≈ 4.5e-5 for unrelated pairs and the first steps are not spent on easy negatives.",
     ["softmax is shift-invariant: a bias cancels", "sigmoid thresholds each pair at 0: the bias sets it",
      "prior: N² − N negatives vs N positives; init −10"]),
]


def _sub_problems():
    """Auto-checked parts, by question number (the topic exercises' checkers, plus design numbers here)."""
    from . import ex01, ex02, ex03, ex05, ex06, ex07, ex08

    return {2: [ex03.q3], 5: [_initial_scale], 7: [ex02.q6, ex02.q5], 8: [ex02.q4], 9: [ex01.q5], 15: [ex06.q3, ex06.q4],
            17: [ex05.q5], 20: [ex07.q4], 21: [ex07.q3], 22: [ex07.q5], 23: [_hnsw_link_bytes], 24: [ex08.q5, ex08.q6],
            25: [ex02.q7], 26: [ex03.q5], 27: [ex03.q4],
            34: [ex02.q8, ex02.q9], 35: [ex08.q1], 36: [ex08.q2], 37: [ex08.q3, ex08.q4],
            38: [_bytes_fp32, _bytes_fp16, _bytes_pq, _total_fp32_tb, _embed_gpu_hours], 39: [_colbert_bytes],
            40: [_gap_choice], 41: [_bow_choice], 42: [_curation_choice], 43: [_temperature_at_cap],
            44: [_hnsw_link_bytes_512], 45: [_bias_choice]}


_initial_scale = NumericProblem(
    var="clip_initial_logit_scale", prompt="CLIP initialises its temperature at 0.07. What logit scale is that?",
    hints=["The scale multiplies the cosine: it is 1 / temperature."], stub="clip_initial_logit_scale = ____",
    solution_code="clip_initial_logit_scale = 1 / 0.07", solution_text="1/0.07 ≈ 14.29.", answer=1 / 0.07, rel_tol=1e-3,
    mistakes=[(0.07, "that is the temperature itself: the scale is its inverse.")])
_hnsw_link_bytes = NumericProblem(
    var="hnsw_base_links_bytes_m16", prompt="HNSW with M = 16 keeps up to 2·M neighbour ids of 4 bytes per vector on "
    "its base layer. How many bytes is that per vector?", hints=["2 · M · 4."], stub="hnsw_base_links_bytes_m16 = ____",
    solution_code="hnsw_base_links_bytes_m16 = 2 * 16 * 4", solution_text="2 · 16 · 4 = 128 bytes.", answer=128,
    rel_tol=1e-9, abs_tol=0.5)
_bytes_fp32 = NumericProblem(
    var="bytes_per_vector_fp32", prompt="Bytes per 512-d ViT-B CLIP embedding in float32?", hints=["4 bytes per number."],
    stub="bytes_per_vector_fp32 = ____", solution_code="bytes_per_vector_fp32 = 512 * 4", solution_text="2,048.",
    answer=2048, rel_tol=1e-9, abs_tol=0.5,
    mistakes=[(768 * 4, "ViT-B CLIP's projected embedding is 512-d; 768 is the vision transformer's hidden width.")])
_bytes_fp16 = NumericProblem(
    var="bytes_per_vector_fp16", prompt="… and in float16?", hints=["2 bytes per number."],
    stub="bytes_per_vector_fp16 = ____", solution_code="bytes_per_vector_fp16 = 512 * 2", solution_text="1,024.",
    answer=1024, rel_tol=1e-9, abs_tol=0.5,
    mistakes=[(768 * 2, "ViT-B CLIP's projected embedding is 512-d; 768 is the vision transformer's hidden width.")])
_bytes_pq = NumericProblem(
    var="bytes_per_vector_pq", prompt="… and as a PQ code with m = 64 sub-quantisers of 8 bits (codes only, no id)?",
    hints=["m · nbits / 8."], stub="bytes_per_vector_pq = ____", solution_code="bytes_per_vector_pq = 64 * 8 / 8",
    solution_text="64 bytes: 32× smaller than fp32.", answer=64, rel_tol=1e-9, abs_tol=0.5,
    mistakes=[(512, "nbits is in bits: 64 codes of 8 bits are 64 bytes.")])
_total_fp32_tb = NumericProblem(
    var="total_fp32_tb", prompt="Total for 1 B vectors in float32, in terabytes (10^12 bytes)?",
    hints=["1e9 × bytes per vector / 1e12."], stub="total_fp32_tb = ____", solution_code="total_fp32_tb = 1e9 * 2048 / 1e12",
    solution_text="2.048 TB (before any index overhead).", answer=2.048, rel_tol=0.01)
_embed_gpu_hours = NumericProblem(
    var="embed_gpu_hours", prompt="Embedding 1 B images at 2,000 images/s per GPU: how many GPU-hours?",
    hints=["1e9 / 2,000 seconds, in hours."], stub="embed_gpu_hours = ____",
    solution_code="embed_gpu_hours = 1e9 / 2000 / 3600", solution_text="≈ 139 GPU-hours: ~6 hours on 24 GPUs.",
    answer=1e9 / 2000 / 3600, rel_tol=0.02, mistakes=[(1e9 / 2000 / 60, "that is GPU-minutes.")])
_colbert_bytes = NumericProblem(
    var="colbertv2_bytes_per_vector", prompt="ColBERTv2-style compression of a 128-d vector: a 4-byte centroid id plus a "
    "2-bit residual per dimension. Bytes per vector?", hints=["4 + 128 · 2 / 8."], stub="colbertv2_bytes_per_vector = ____",
    solution_code="colbertv2_bytes_per_vector = 4 + 128 * 2 / 8", solution_text="36 bytes vs 256 in fp16 (~7×).",
    answer=36, rel_tol=1e-9, abs_tol=0.5, mistakes=[(32, "the residual alone: the centroid id is stored too.")])
_temperature_at_cap = NumericProblem(
    var="temperature_at_cap", prompt="CLIP clamps its logit scale at 100. What temperature is that?",
    hints=["temperature = 1 / scale."], stub="temperature_at_cap = ____", solution_code="temperature_at_cap = 1 / 100",
    solution_text="0.01.", answer=0.01, rel_tol=1e-3)
_hnsw_link_bytes_512 = NumericProblem(
    var="hnsw_overhead_fraction", prompt="With M = 32 (≈ 2·32·4 = 256 bytes of base-layer links per vector), what "
    "fraction of a 512-d float32 vector's size do the links add?", hints=["256 / (512 · 4)."],
    stub="hnsw_overhead_fraction = ____", solution_code="hnsw_overhead_fraction = 256 / (512 * 4)",
    solution_text="0.125: the links do not grow with the dimension, so their share shrinks as vectors grow.",
    answer=0.125, rel_tol=1e-3, mistakes=[(256 / (768 * 4), "ViT-B CLIP embeddings are 512-d, not 768-d.")])
_gap_choice = ChoiceProblem(
    var="answer_modality_gap", prompt="Which task does the modality gap hurt?",
    options={"a": "Ranking 1,000 images for one text query.",
             "b": "One index mixing image and text vectors, queried with text.",
             "c": "Ranking 1,000 captions for one image query.",
             "d": "None: normalisation removes it."},
    correct="b",
    explanations={"a": "every image carries the same offset from the text cone, so the ranking is unaffected.",
                  "b": "text vectors sit in their own cone: a text query finds texts before any image.",
                  "c": "every caption carries the same offset, so the ranking among captions is unaffected.",
                  "d": "the gap is between directions on the unit sphere; normalising keeps it."},
    stub="answer_modality_gap = ____  # 'a', 'b', 'c' or 'd'", solution_code="answer_modality_gap = 'b'")
_bow_choice = ChoiceProblem(
    var="answer_bag_of_words", prompt="Which training change most directly teaches a CLIP model attribute binding?",
    options={"a": "A larger batch of random captions.", "b": "A longer text context (more tokens).",
             "c": "Hard negatives made by swapping attributes or word order in the true caption.",
             "d": "A higher logit-scale cap."},
    correct="c",
    explanations={"a": "more random negatives rarely differ from the positive by a swapped attribute only.",
                  "b": "the captions are short already; length is not what is missing.",
                  "c": "the model must tell 'red circle, blue square' from 'blue circle, red square' (NegCLIP).",
                  "d": "a sharper softmax does not change which distinctions the negatives demand."},
    stub="answer_bag_of_words = ____  # 'a', 'b', 'c' or 'd'", solution_code="answer_bag_of_words = 'c'")
_curation_choice = ChoiceProblem(
    var="answer_curation", prompt="What did DataComp hold fixed, and what did it vary?",
    options={"a": "Fixed the data; varied the model architecture.", "b": "Fixed the model and training recipe; varied the data filtering.",
             "c": "Fixed the batch size; varied the loss.", "d": "Fixed the text encoder; varied the image encoder."},
    correct="b",
    explanations={"a": "architecture changes were out of scope: the benchmark is about data.",
                  "b": "the filters (CLIP score, clustering, …) were the competition; smaller, cleaner data won.",
                  "c": "the loss was the standard CLIP loss throughout.",
                  "d": "both towers were trained as usual."},
    stub="answer_curation = ____  # 'a', 'b', 'c' or 'd'", solution_code="answer_curation = 'b'")
_bias_choice = ChoiceProblem(
    var="answer_bias", prompt="Adding the same constant b to every logit of one image's row changes:",
    options={"a": "Its softmax probabilities and its sigmoid probabilities.", "b": "Only its softmax probabilities.",
             "c": "Only its sigmoid probabilities.", "d": "Neither."},
    correct="c",
    explanations={"a": "one of the two normalises over the row, and a shift of all its inputs cancels there.",
                  "b": "exp(z + b) / Σ exp(z + b) = exp(z) / Σ exp(z): a shift cancels in that one.",
                  "c": "the softmax is shift-invariant; each sigmoid compares its own logit with 0.",
                  "d": "σ(z + b) ≠ σ(z) for b ≠ 0."},
    stub="answer_bias = ____  # 'a', 'b', 'c' or 'd'", solution_code="answer_bias = 'c'")

_KIND_MINUTES = {"written": 5.0, "coding": 15.0, "design": 12.0}
_module = globals()
QUESTIONS: list[RubricProblem] = []


def _build():
    subs = _sub_problems()
    items = [(t, "written", q, a, p) for t, q, a, p in _QUESTIONS] + list(_DEEP)
    for i, (topic, kind, question, answer, points) in enumerate(items, start=1):
        sub = subs.get(i, [])
        if kind == "written" and any(isinstance(s, FunctionProblem) for s in sub):
            kind = "coding"
        problem = RubricProblem(var=f"answer_q{i}", prompt=question, question=question, model_answer=answer,
                                points=list(points), sub_questions=list(sub), kind=kind, qid=f"q{i}", topic=topic,
                                minutes=_KIND_MINUTES[kind],
                                hints=[f"Topic: {topic}. A complete answer covers {len(points)} points; answer, then "
                                       "reveal() and tick."])
        _module[f"q{i}"] = problem
        QUESTIONS.append(problem)


_build()
N_SEED_QUESTIONS = len(_QUESTIONS)  # the seed lesson's four plus the course's own, before the deeper ones


def coding_tasks():
    """The whiteboard tasks, checked by the topic exercises' checkers (one checker serves both)."""
    from . import ex01, ex02, ex06, ex07, ex08

    return [ex02.q2, ex02.q3, ex01.q2, ex06.q2, ex07.q3, ex02.q8, ex02.q9, ex08.q1, ex08.q2, ex08.q3]


PROBLEMS = QUESTIONS
