// What every typed facade shares: a call within the configured deadline (retries
// included), each attempt carrying the time left as its gRPC deadline and the caller's W3C
// trace context, failures as PdmError; and a server stream read as an AsyncIterable.

import { randomBytes } from "node:crypto";

import * as grpc from "@grpc/grpc-js";

import type { Config, ClientConstructor, ServiceChannel } from "./config.js";
import { Code, PdmError, fromServiceError } from "./errors.js";

type Callback<T> = (error: grpc.ServiceError | null, value?: T) => void;

/** One unary call on a generated client (`(c, m, o, cb) => c.getAccount(request, m, o, cb)`). */
export type Unary<C, T> = (
  client: C,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: Callback<T>,
) => grpc.ClientUnaryCall;

/** A generated unary method's request and answer (its last overload is
 * `(argument, callback)`, which is what a conditional type reads). */
type RequestOf<F> = F extends (argument: infer A, callback: grpc.requestCallback<infer _R>) => grpc.ClientUnaryCall ? A : never;
type AnswerOf<F> = F extends (argument: infer _A, callback: grpc.requestCallback<infer R>) => grpc.ClientUnaryCall ? R : never;
/** The names of a generated client's unary methods. */
type UnaryName<C> = {
  [K in keyof C]: [AnswerOf<C[K]>] extends [never] ? never : K;
}[keyof C] &
  string;

/** The channel to one service and how calls go over it. */
export class Caller<C extends grpc.Client> {
  readonly channel: ServiceChannel<C>;

  constructor(
    readonly config: Config,
    service: string,
    make: ClientConstructor<C>,
  ) {
    this.channel = config.connect(service, make);
  }

  close(): void {
    this.channel.close();
  }

  metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(this.config.traceHeaders())) {
      metadata.set(key, value);
    }
    return metadata;
  }

  /** A unary call, retried as {@link RetryPolicy} says: an idempotent one (a read, or a
   * write with an idempotency key) after UNAVAILABLE too. */
  unary<T>(idempotent: boolean, method: Unary<C, T>): Promise<T> {
    const deadline = performance.now() + this.config.timeoutMs;
    return this.config.retry.run(idempotent, deadline, (left) => {
      return new Promise<T>((resolve, reject) => {
        const { client, release } = this.channel.acquire();
        const options: grpc.CallOptions = { deadline: new Date(Date.now() + left) };
        try {
          method(client, this.metadata(), options, (error, value) => {
            release();
            if (error) reject(fromServiceError(error));
            else if (value === undefined) reject(new PdmError(Code.INTERNAL, "internal: an empty answer"));
            else resolve(value);
          });
        } catch (error) {
          release();
          reject(fromServiceError(error));
        }
      });
    });
  }

  /** The unary method `name` of the generated client (`"getAccount"`), as {@link unary}. */
  call<K extends UnaryName<C>>(
    idempotent: boolean,
    name: K,
    request: RequestOf<C[K]>,
  ): Promise<AnswerOf<C[K]>> {
    return this.unary<AnswerOf<C[K]>>(idempotent, (client, metadata, options, callback) => {
      const method = client[name] as unknown as (
        this: C,
        request: RequestOf<C[K]>,
        metadata: grpc.Metadata,
        options: grpc.CallOptions,
        callback: Callback<AnswerOf<C[K]>>,
      ) => grpc.ClientUnaryCall;
      return method.call(client, request, metadata, options, callback);
    });
  }

  /** A server stream (no deadline: it lasts until it ends, is cancelled, or the connection
   * ends), its messages mapped by `map` (undefined: skipped). Not retried. */
  stream<M, T>(
    open: (client: C, metadata: grpc.Metadata) => grpc.ClientReadableStream<M>,
    map: (message: M) => T | undefined,
  ): ResponseStream<M, T> {
    const { client, release } = this.channel.acquire();
    try {
      return new ResponseStream(open(client, this.metadata()), release, map);
    } catch (error) {
      release();
      throw fromServiceError(error);
    }
  }
}

// Past this many messages not yet taken by the reader, the stream is paused (HTTP/2 flow
// control then holds the server back).
const HIGH_WATER = 1_000;

/**
 * A server stream's messages: `for await (const item of stream)`; `cancel()` ends it (the
 * iteration then ends quietly). A failure of the stream is thrown from the iteration as a
 * {@link PdmError}. One iteration per stream: the messages are taken as they are read.
 */
export class ResponseStream<M, T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private failure: PdmError | undefined;
  private ended = false;
  private cancelled = false;
  private wake: (() => void) | undefined;
  private readonly open: Promise<void>;

  constructor(
    private readonly call: grpc.ClientReadableStream<M>,
    release: () => void,
    map: (message: M) => T | undefined,
  ) {
    let settle: (error?: PdmError) => void = () => {};
    this.open = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Nobody may wait for the opening: its failure is thrown by the iteration too.
    this.open.catch(() => {});
    call.once("metadata", () => settle());
    call.on("data", (message: M) => {
      const item = map(message);
      if (item !== undefined) this.queue.push(item);
      if (this.queue.length >= HIGH_WATER) call.pause();
      this.notify();
    });
    // grpc-js emits the error of a failed call without destroying the stream: listened to
    // here, so that an error before the iteration starts is neither lost nor unhandled.
    call.on("error", (error: unknown) => {
      if (!this.cancelled) this.failure = fromServiceError(error);
    });
    call.on("status", () => {
      this.ended = true;
      release();
      settle(this.failure);
      this.notify();
    });
  }

  /** Resolves once the server has answered the call (its response headers), so a stream
   * that could not be opened fails here rather than at the first message. */
  opened(): Promise<void> {
    return this.open;
  }

  /** Ends the stream. */
  cancel(): void {
    this.cancelled = true;
    this.call.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next !== undefined) {
          if (this.call.isPaused() && this.queue.length < HIGH_WATER / 2) this.call.resume();
          yield next;
          continue;
        }
        if (this.ended) {
          if (this.failure !== undefined && !this.cancelled) throw this.failure;
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      // A reader that stops early (break, return, a throw) is done with the stream.
      if (!this.ended) this.cancel();
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** An answer without a part the contract always sends. */
export function missing(what: string): PdmError {
  return new PdmError(Code.INTERNAL, `internal: the answer has no ${what}`);
}

/** A fresh idempotency key for a write the caller gave none: letters only, so it can
 * never look like a payment card number (which the services refuse in any field); the
 * same form as the Rust client's. */
export function newKey(): string {
  const letters = [...randomBytes(24)].map((b) => String.fromCharCode(97 + (b % 26))).join("");
  return `pdmc-${letters}`;
}
